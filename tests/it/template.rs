//! Checks on `template.yaml` that cfn-lint does not make: the looped route functions as SAM and
//! CloudFormation expand them, SAM enum values, least privilege, and the queue/consumer timing rule.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use crate::support::repo_root;

/// What the expansion tests deploy: two Slack apps and a GitHub, by route id (`slack-a` is
/// `slacka`), as `routes push` prints them.
const THREE_ROUTES: &str = "slacka,slackb,github";

/// The template as written (its loops unexpanded).
fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The template as the pinned SAM CLI's language-extension expander leaves it for `Routes`, and
/// with `translate` after the SAM transform too (`scripts/expand_template.py`; the test command
/// puts the pinned tools' Python first on PATH).
fn expand(template: &std::path::Path, routes: Option<&str>, translate: bool) -> serde_json::Value {
    let mut command = std::process::Command::new("python3");
    command
        .arg(repo_root().join("scripts/expand_template.py"))
        .arg(template);
    if translate {
        command.arg("--translate");
    }
    if let Some(routes) = routes {
        command.arg(format!("Routes={routes}"));
    }
    let output = command.output().expect("python3 runs");
    assert!(
        output.status.success(),
        "expanding the template failed (run the tests through scripts/test, which installs the \
         pinned SAM CLI): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn translated(routes: Option<&str>) -> serde_json::Value {
    expand(&repo_root().join("template.yaml"), routes, true)
}

/// The expanded (not yet translated) template, for the checks written against SAM resources.
fn expanded(routes: &str) -> Value {
    serde_yaml_ng::to_value(expand(
        &repo_root().join("template.yaml"),
        Some(routes),
        false,
    ))
    .unwrap()
}

/// Resources of one type, by logical id.
fn resources<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap(), r))
        .collect()
}

/// Every plain string inside a value, looking through intrinsic-function tags (`!Sub`, `!If`, …).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Mapping(map) => map.values().for_each(|v| strings(v, out)),
        Value::Tagged(tagged) => strings(&tagged.value, out),
        _ => {}
    }
}

fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("expected a literal number, got {value:?}"))
}

#[test]
fn functions_build_with_cargo_lambda_from_the_two_binaries() {
    let template = expanded(THREE_ROUTES);
    let functions = resources(&template, "AWS::Serverless::Function");
    assert!(functions.len() >= 2);
    for (id, function) in functions {
        assert_eq!(
            function["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{id}"
        );
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        assert!(["ingest", "consumer"].contains(&binary), "{id}: {binary}");
    }
    assert_eq!(
        template["Globals"]["Function"]["Runtime"],
        "provided.al2023"
    );
    assert_eq!(
        template["Globals"]["Function"]["LoggingConfig"]["LogFormat"],
        "JSON"
    );
}

#[test]
fn consumer_reports_partial_batch_failures_and_queue_outlasts_it() {
    let template = template();
    let (_, consumer) = resources(&template, "AWS::Serverless::Function")
        .into_iter()
        .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"] == "consumer")
        .unwrap();
    let event = consumer["Properties"]["Events"]
        .as_mapping()
        .unwrap()
        .values()
        .find(|e| e["Type"] == "SQS")
        .expect("an SQS event source");
    let types: Vec<&str> = event["Properties"]["FunctionResponseTypes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        types,
        ["ReportBatchItemFailures"],
        "without it a failed batch deletes messages"
    );
    assert!(
        event["Properties"]["ScalingConfig"]
            .get("MaximumConcurrency")
            .is_some()
    );

    let queue = &template["Resources"]["EventsQueue"]["Properties"];
    let timeout = number(&consumer["Properties"]["Timeout"]);
    assert!(number(&queue["VisibilityTimeout"]) >= 6 * timeout);
    assert!(queue["RedrivePolicy"].get("deadLetterTargetArn").is_some());
}

#[test]
fn policies_are_least_privilege() {
    let template = expanded(THREE_ROUTES);
    for (id, function) in resources(&template, "AWS::Serverless::Function") {
        let mut texts = Vec::new();
        strings(&function["Properties"]["Policies"], &mut texts);
        for text in &texts {
            let is_action = text.contains(':') && !text.starts_with("arn:") && !text.contains("${");
            assert!(
                !(is_action && text.contains('*')),
                "{id}: wildcard action {text}"
            );
            assert_ne!(text, "*", "{id}: wildcard resource");
        }
        assert!(
            !texts.iter().any(|t| t.contains("FullAccess")),
            "{id}: managed full-access policy"
        );
    }
}

#[test]
fn alarms_watch_dead_letters_event_age_and_consumer_errors_and_can_email() {
    let template = template();
    let alarms = resources(&template, "AWS::CloudWatch::Alarm");
    let watched = |namespace: &str, metric: &str| {
        alarms
            .iter()
            .find(|(_, a)| {
                a["Properties"]["Namespace"].as_str() == Some(namespace)
                    && a["Properties"]["MetricName"].as_str() == Some(metric)
            })
            .map(|(_, a)| &a["Properties"])
            .unwrap_or_else(|| panic!("no alarm on {namespace} {metric}"))
    };
    let dead = watched("AWS/SQS", "ApproximateNumberOfMessagesVisible");
    let age = watched("AWS/SQS", "ApproximateAgeOfOldestMessage");
    let errors = watched("AWS/Lambda", "Errors");
    let queue_of = |alarm: &Value| {
        let mut texts = Vec::new();
        strings(&alarm["Dimensions"], &mut texts);
        texts
    };
    assert!(queue_of(dead).contains(&"EventsDeadLetterQueue.QueueName".to_owned()));
    assert!(queue_of(age).contains(&"EventsQueue.QueueName".to_owned()));
    assert_eq!(age["Statistic"].as_str(), Some("Maximum"));
    assert_eq!(errors["Statistic"].as_str(), Some("Sum"));

    // Every alarm notifies the topic when an email is given, and the topic exists only then.
    let topic = &template["Resources"]["AlarmTopic"];
    assert_eq!(topic["Type"].as_str(), Some("AWS::SNS::Topic"));
    assert_eq!(topic["Condition"].as_str(), Some("AlarmsNotify"));
    for (id, alarm) in &alarms {
        let mut actions = Vec::new();
        strings(&alarm["Properties"]["AlarmActions"], &mut actions);
        assert_eq!(
            actions.first().map(String::as_str),
            Some("AlarmsNotify"),
            "{id}: AlarmActions is !If [AlarmsNotify, …]"
        );
        assert!(actions.iter().any(|a| a == "AlarmTopic"), "{id}");
    }
}

/// CloudWatch can publish only to a topic whose key it may use: never the AWS-managed aws/sns
/// key. The topic is unencrypted (alarm messages hold no event data); if a key is ever set, it
/// must be a key of the template's own whose policy lets CloudWatch use it.
#[test]
fn cloudwatch_alarms_can_publish_to_the_alarm_topic() {
    let template = template();
    let resources_of = &template["Resources"];
    let topic = &resources_of["AlarmTopic"]["Properties"];
    match &topic["KmsMasterKeyId"] {
        Value::Null => {}
        key => {
            let mut names = Vec::new();
            strings(key, &mut names);
            assert!(
                !names.iter().any(|n| n.contains("aws/sns")),
                "CloudWatch cannot use the AWS-managed aws/sns key: {key:?}"
            );
            let key_id = names
                .iter()
                .find(|n| resources_of[n.split('.').next().unwrap()]["Type"] == "AWS::KMS::Key")
                .unwrap_or_else(|| {
                    panic!("the topic's key is not a key of this template: {key:?}")
                });
            let key_resource = &resources_of[key_id.split('.').next().unwrap()];
            let statements = key_resource["Properties"]["KeyPolicy"]["Statement"]
                .as_sequence()
                .unwrap();
            assert!(
                statements.iter().any(|s| {
                    let mut texts = Vec::new();
                    strings(s, &mut texts);
                    texts.iter().any(|t| t == "cloudwatch.amazonaws.com")
                        && texts.iter().any(|t| t == "kms:Decrypt")
                        && texts.iter().any(|t| t.starts_with("kms:GenerateDataKey"))
                }),
                "the key policy lets CloudWatch decrypt and generate data keys"
            );
        }
    }
    let policy = resources_of
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| r["Type"] == "AWS::SNS::TopicPolicy")
        .expect("a topic policy");
    assert_eq!(policy["Condition"], "AlarmsNotify");
    let mut topics = Vec::new();
    strings(&policy["Properties"]["Topics"], &mut topics);
    assert_eq!(topics, ["AlarmTopic"]);
    let statements = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    let publish = statements
        .iter()
        .find(|s| s["Effect"] == "Allow")
        .expect("an Allow statement");
    assert_eq!(publish["Principal"]["Service"], "cloudwatch.amazonaws.com");
    assert_eq!(publish["Action"], "sns:Publish");
    let mut conditions = Vec::new();
    strings(&publish["Condition"], &mut conditions);
    assert!(
        conditions.iter().any(|c| c == "AWS::AccountId"),
        "publishing is limited to this account's alarms: {conditions:?}"
    );
}

#[test]
fn log_level_never_filters_out_the_metric_lines() {
    // EMF documents are marked WARN (shared/src/metrics.rs); a function logging at ERROR would
    // drop them, and with them every count the dashboards and alarms rely on.
    let template = template();
    let allowed = template["Parameters"]["LogLevel"]["AllowedValues"]
        .as_sequence()
        .unwrap();
    assert!(allowed.iter().any(|v| v.as_str() == Some("WARN")));
    for level in ["ERROR", "FATAL"] {
        assert!(
            !allowed.iter().any(|v| v.as_str() == Some(level)),
            "{level}"
        );
    }
    let logging = &template["Globals"]["Function"]["LoggingConfig"];
    assert_eq!(logging["LogFormat"].as_str(), Some("JSON"));
}

#[test]
fn claim_checked_bodies_outlive_the_queues_and_routes_may_reserve_concurrency() {
    let template = template();
    // The bodies' lifecycle is max(EventRetentionDays, 15): 15 exactly when the retention is 1-14.
    let rules =
        &template["Resources"]["BodiesBucket"]["Properties"]["LifecycleConfiguration"]["Rules"];
    let Value::Tagged(expiry) = &rules[0]["ExpirationInDays"] else {
        panic!("the body expiry is an !If");
    };
    assert_eq!(expiry.tag, "!If");
    assert_eq!(expiry.value[0].as_str(), Some("EventRetentionUnder15Days"));
    assert_eq!(number(&expiry.value[1]), 15);
    let mut under = Vec::new();
    strings(
        &template["Conditions"]["EventRetentionUnder15Days"],
        &mut under,
    );
    let mut days: Vec<u64> = under.iter().filter_map(|t| t.parse().ok()).collect();
    days.sort_unstable();
    assert_eq!(days, (1..=14).collect::<Vec<_>>());
    assert_eq!(
        number(&template["Parameters"]["EventRetentionDays"]["MinValue"]),
        1
    );
    for queue in ["EventsQueue", "EventsDeadLetterQueue"] {
        let retention =
            number(&template["Resources"][queue]["Properties"]["MessageRetentionPeriod"]);
        assert!(
            retention <= 15 * 86_400,
            "{queue} keeps messages longer than their bodies"
        );
    }

    // Reserved concurrency: each route function, optional and unset by default; never the consumer.
    assert_eq!(
        template["Parameters"]["RouteReservedConcurrency"]["Default"].as_str(),
        Some("")
    );
    // The expander drops the property where the default leaves it empty: check the loop as written.
    let looped = &template["Resources"]["Fn::ForEach::RouteFunctions"][2]["Route${RouteId}"];
    let mut texts = Vec::new();
    strings(
        &looped["Properties"]["ReservedConcurrentExecutions"],
        &mut texts,
    );
    assert!(
        texts.iter().any(|t| t == "RouteReservedConcurrency"),
        "{texts:?}"
    );
    for (id, function) in resources(&template, "AWS::Serverless::Function") {
        assert!(
            function["Properties"]["ReservedConcurrentExecutions"].is_null(),
            "{id}: the consumer scales by its event source"
        );
    }
}

/// Every `Ref`, `Fn::GetAtt` and `${…}` of `Fn::Sub` in `value`, as the logical id it names.
fn references(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("Ref", serde_json::Value::String(name)) => {
                        out.insert(name.clone());
                    }
                    ("Fn::GetAtt", serde_json::Value::Array(parts)) => {
                        if let Some(name) = parts.first().and_then(|p| p.as_str()) {
                            out.insert(name.to_owned());
                        }
                    }
                    ("Fn::GetAtt", serde_json::Value::String(dotted)) => {
                        out.insert(dotted.split('.').next().unwrap().to_owned());
                    }
                    ("Fn::Sub", sub) => {
                        let (text, bound) = match sub {
                            serde_json::Value::Array(parts) => (
                                parts[0].as_str().unwrap_or_default(),
                                parts.get(1).and_then(|b| b.as_object()),
                            ),
                            other => (other.as_str().unwrap_or_default(), None),
                        };
                        let mut rest = text;
                        while let Some(start) = rest.find("${") {
                            let end = start + rest[start..].find('}').unwrap();
                            let name = rest[start + 2..end].split('.').next().unwrap();
                            if !name.starts_with('!')
                                && !bound.is_some_and(|b| b.contains_key(name))
                            {
                                out.insert(name.to_owned());
                            }
                            rest = &rest[end..];
                        }
                        if let serde_json::Value::Array(parts) = sub {
                            parts.iter().skip(1).for_each(|p| references(p, out));
                        }
                    }
                    _ => references(inner, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn logical_id(route: &str) -> String {
    hookcatch::config::logical_id(route)
}

#[test]
fn every_reference_of_three_looped_routes_names_something_that_exists() {
    let template = translated(Some(THREE_ROUTES));
    let resources = template["Resources"].as_object().unwrap();
    let parameters = template["Parameters"].as_object().unwrap();
    let mut named = BTreeSet::new();
    references(&template["Resources"], &mut named);
    references(&template["Outputs"], &mut named);
    assert!(named.contains("Routeslacka") && named.contains("RoutegithubUrl"));
    for name in &named {
        assert!(
            resources.contains_key(name)
                || parameters.contains_key(name)
                || name.starts_with("AWS::"),
            "`{name}` is referenced but is no resource or parameter"
        );
    }
    for resource in resources.values() {
        for depends in resource["DependsOn"].as_array().into_iter().flatten() {
            assert!(
                resources.contains_key(depends.as_str().unwrap()),
                "{depends}"
            );
        }
    }
}

#[test]
fn each_route_gets_its_function_public_url_and_output_reading_only_its_own_path() {
    let template = translated(Some(THREE_ROUTES));
    let resources = template["Resources"].as_object().unwrap();
    let of_type = |kind: &str| {
        resources
            .iter()
            .filter(|(_, r)| r["Type"] == kind)
            .map(|(id, r)| (id.as_str(), r))
            .collect::<Vec<_>>()
    };
    let functions = of_type("AWS::Lambda::Function");
    assert_eq!(functions.len(), 4, "three routes and the consumer");
    for route in THREE_ROUTES.split(',') {
        let id = logical_id(route);
        let function = &resources[&id];
        assert_eq!(function["Type"], "AWS::Lambda::Function", "{route}");
        let variables = &function["Properties"]["Environment"]["Variables"];
        assert_eq!(
            variables["HOOKCATCH_ROUTE_PATH"],
            format!("/hookcatch/hookcatch/routes/{route}"),
            "{route}: reads its configuration from its own path"
        );
        assert_eq!(
            variables["HOOKCATCH_ROUTE"], "",
            "{route}: no whole-route override"
        );
        let url = &resources[&format!("{id}Url")];
        assert_eq!(
            url["Properties"]["AuthType"], "NONE",
            "{route}: third parties cannot sign with IAM"
        );
        let permissions = |action: &str| {
            of_type("AWS::Lambda::Permission")
                .into_iter()
                .filter(|(_, p)| {
                    p["Properties"]["FunctionName"]["Ref"] == id.as_str()
                        && p["Properties"]["Action"] == action
                })
                .map(|(_, p)| p["Properties"].clone())
                .collect::<Vec<_>>()
        };
        let url_invokes = permissions("lambda:InvokeFunctionUrl");
        assert!(
            url_invokes.iter().any(|p| p["Principal"] == "*"),
            "{route}: {url_invokes:?}"
        );
        // Public, but only through the URL: a bare `lambda:Invoke` could forge the request
        // context (`sourceIp` past `allow_ips`, the `Host` Twilio's URL is built from).
        let invokes = permissions("lambda:InvokeFunction");
        assert!(
            invokes
                .iter()
                .any(|p| p["Principal"] == "*" && p["InvokedViaFunctionUrl"] == true),
            "{route}: a public URL needs lambda:InvokeFunction through the URL as well: {invokes:?}"
        );
        for permission in &invokes {
            assert!(
                permission["Principal"] != "*" || permission["InvokedViaFunctionUrl"] == true,
                "{route}: a public lambda:InvokeFunction without InvokedViaFunctionUrl: {permission}"
            );
        }
        let output = &template["Outputs"][format!("{id}Url")];
        assert_eq!(
            output["Value"]["Fn::GetAtt"],
            serde_json::json!([format!("{id}Url"), "FunctionUrl"])
        );
        // `deploy` sets a route's own reserved concurrency on the function this names.
        assert_eq!(
            template["Outputs"][format!("{id}FunctionArn")]["Value"]["Fn::GetAtt"],
            serde_json::json!([id, "Arn"])
        );
        // Its role reads its own path and nothing else of SSM.
        let role = &resources[&format!("{id}Role")];
        let mut texts = Vec::new();
        json_strings(&role["Properties"]["Policies"], &mut texts);
        let ssm: Vec<&String> = texts.iter().filter(|t| t.contains(":parameter")).collect();
        assert!(!ssm.is_empty(), "{route}");
        for arn in ssm {
            assert!(
                // The expander fills the stack name (`hookcatch`) in.
                arn.ends_with(&format!(":parameter/hookcatch/hookcatch/routes/{route}"))
                    || arn.ends_with(&format!(":parameter/hookcatch/hookcatch/routes/{route}/*")),
                "{route}: {arn}"
            );
        }
    }
    let consumer = &resources["ConsumerFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        consumer["HOOKCATCH_ROUTES_PATH"],
        "/hookcatch/hookcatch/routes"
    );
}

fn json_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| json_strings(v, out)),
        _ => {}
    }
}

#[test]
fn removing_a_route_removes_its_function_url_and_output_and_nothing_else() {
    let three = translated(Some(THREE_ROUTES));
    let two = translated(Some("slacka,github"));
    let keys = |t: &serde_json::Value, section: &str| -> BTreeSet<String> {
        t[section].as_object().unwrap().keys().cloned().collect()
    };
    let gone: Vec<String> = keys(&three, "Resources")
        .difference(&keys(&two, "Resources"))
        .cloned()
        .collect();
    assert_eq!(
        gone,
        [
            "Routeslackb",
            "RouteslackbRole",
            "RouteslackbURLInvokeAllowPublicAccess",
            "RouteslackbUrl",
            "RouteslackbUrlPublicPermissions"
        ]
    );
    assert!(keys(&two, "Resources").is_subset(&keys(&three, "Resources")));
    for id in keys(&two, "Resources") {
        assert_eq!(
            two["Resources"][&id], three["Resources"][&id],
            "{id} changed"
        );
    }
    let gone: Vec<String> = keys(&three, "Outputs")
        .difference(&keys(&two, "Outputs"))
        .cloned()
        .collect();
    assert_eq!(gone, ["RouteslackbFunctionArn", "RouteslackbUrl"]);
}

#[test]
fn the_default_deploys_no_route_and_ninety_fit_under_the_resource_limit() {
    // An empty list still expands once, with an empty name: HasRoutes keeps that one out.
    let default = translated(None);
    assert_eq!(
        default["Conditions"]["HasRoutes"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": ["", ""]}]})
    );
    let resources = default["Resources"].as_object().unwrap();
    for (id, resource) in resources.iter().filter(|(id, _)| id.starts_with("Route")) {
        assert_eq!(resource["Condition"], "HasRoutes", "{id}");
    }
    for (id, output) in default["Outputs"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(id, _)| id.starts_with("Route"))
    {
        assert_eq!(output["Condition"], "HasRoutes", "{id}");
    }
    let base = resources
        .iter()
        .filter(|(id, _)| !id.starts_with("Route"))
        .count();
    let names: Vec<String> = (0..hookcatch::config::MAX_DEPLOYED_ROUTES)
        .map(|i| format!("route{i}"))
        .collect();
    let most = translated(Some(&names.join(",")));
    let count = most["Resources"].as_object().unwrap().len();
    assert!(
        count <= 500,
        "{} routes make {count} resources ({base} without routes)",
        names.len()
    );
    assert!(most["Outputs"].as_object().unwrap().len() <= 200);
}

#[test]
fn samconfig_switches_language_extensions_on_for_every_sam_command() {
    let text = std::fs::read_to_string(repo_root().join("samconfig.toml")).unwrap();
    let config: toml::Table = toml::from_str(&text).unwrap();
    for command in ["build", "validate", "deploy", "package", "local_invoke"] {
        assert_eq!(
            config["default"][command]["parameters"]["language_extensions"].as_bool(),
            Some(true),
            "sam {command}"
        );
    }
}

/// What `sam build` made (the test command builds with the three routes): the route binary built
/// once for every route, and the built template still looping for CloudFormation, with a URL and
/// a function Output per route when expanded.
#[test]
fn sam_build_builds_the_route_binary_once_with_a_url_and_function_output_per_route() {
    let dir = std::path::PathBuf::from(
        std::env::var("HOOKCATCH_SAM_BUILD_DIR")
            .expect("HOOKCATCH_SAM_BUILD_DIR is unset: run the tests through scripts/test"),
    );
    let ids: Vec<&str> = THREE_ROUTES.split(',').collect();
    let paths: BTreeSet<std::path::PathBuf> = ids
        .iter()
        .map(|id| crate::fake_runtime::bootstrap(&logical_id(id)))
        .collect();
    assert_eq!(paths.len(), 1, "one artifact for every route: {paths:?}");
    let artifacts: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("bootstrap").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        artifacts.len(),
        2,
        "the route binary and the consumer: {artifacts:?}"
    );
    let route_binary = std::fs::read(paths.first().unwrap()).unwrap();
    assert_ne!(
        route_binary,
        std::fs::read(crate::fake_runtime::bootstrap("ConsumerFunction")).unwrap()
    );
    let built = expand(&dir.join("template.yaml"), Some(THREE_ROUTES), false);
    let outputs: BTreeSet<&String> = built["Outputs"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("Route"))
        .collect();
    let expected: BTreeSet<String> = ids
        .iter()
        .flat_map(|id| ["Url", "FunctionArn"].map(|kind| format!("{}{kind}", logical_id(id))))
        .collect();
    assert_eq!(outputs, expected.iter().collect());
}

/// The event index as the consumer writes it and `events list --aws --route` queries it: on by
/// default, switched off by one parameter (then the consumer writes no index keys), keyed by the
/// attributes and named as the code says.
#[test]
fn the_event_index_is_on_by_default_and_matches_what_the_code_writes() {
    let template = template();
    assert_eq!(
        template["Parameters"]["EventIndex"]["Default"].as_str(),
        Some("on")
    );
    let Value::Tagged(condition) = &template["Conditions"]["HasEventIndex"] else {
        panic!("HasEventIndex is an !Equals");
    };
    assert_eq!(condition.tag, "!Equals");
    assert_eq!(condition.value[1].as_str(), Some("on"));
    let table = &template["Resources"]["EventsTable"]["Properties"];
    let Value::Tagged(indexes) = &table["GlobalSecondaryIndexes"] else {
        panic!("the index is an !If on HasEventIndex");
    };
    assert_eq!(indexes.tag, "!If");
    assert_eq!(indexes.value[0].as_str(), Some("HasEventIndex"));
    let index = &indexes.value[1][0];
    assert_eq!(
        index["IndexName"].as_str(),
        Some(hookcatch::aws::EVENT_INDEX)
    );
    let keys: Vec<(&str, &str)> = index["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap(),
                k["KeyType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, [("ix", "HASH"), ("ix_sk", "RANGE")]);
    assert_eq!(
        index["Projection"]["ProjectionType"].as_str(),
        Some("INCLUDE")
    );
    let Value::Tagged(definitions) = &table["AttributeDefinitions"] else {
        panic!("the key attributes follow the same condition");
    };
    let with_index: Vec<&str> = definitions.value[1]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| d["AttributeName"].as_str().unwrap())
        .collect();
    assert_eq!(with_index, ["pk", "ix", "ix_sk"]);
    let env = &template["Resources"]["ConsumerFunction"]["Properties"]["Environment"]["Variables"];
    let Value::Tagged(switch) = &env[hookcatch::config::ConsumerEnv::EVENT_INDEX] else {
        panic!("the consumer is told whether the index exists");
    };
    assert_eq!(switch.value[0].as_str(), Some("HasEventIndex"));
    assert_eq!(
        (switch.value[1].as_str(), switch.value[2].as_str()),
        (Some("on"), Some("off"))
    );
}
