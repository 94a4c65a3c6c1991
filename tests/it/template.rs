//! Checks on `template.yaml` that cfn-lint does not make: SAM enum values, least privilege, secrets,
//! and the queue/consumer timing rule.

use hookcatch::ProviderKind;
use serde_yaml_ng::Value;

use crate::support::repo_root;

fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
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
    let template = template();
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
fn every_route_has_a_public_url_an_invoke_permission_and_an_output() {
    let template = template();
    let permissions = resources(&template, "AWS::Lambda::Permission");
    let mut routes = 0;
    for (id, function) in resources(&template, "AWS::Serverless::Function") {
        let Some(url) = function["Properties"].get("FunctionUrlConfig") else {
            continue;
        };
        routes += 1;
        assert_eq!(
            url["AuthType"], "NONE",
            "{id}: third parties cannot sign with IAM"
        );
        assert!(
            function["Properties"]["Environment"]["Variables"]
                .get("HOOKCATCH_ROUTE")
                .is_some(),
            "{id}"
        );
        let permitted = permissions.iter().any(|(_, p)| {
            let mut names = Vec::new();
            strings(&p["Properties"]["FunctionName"], &mut names);
            names.iter().any(|n| n == id)
                && p["Properties"]["Action"] == "lambda:InvokeFunction"
                && p["Properties"]["InvokedViaFunctionUrl"] == true
        });
        assert!(
            permitted,
            "{id}: Function URLs need lambda:InvokeFunction via the URL"
        );
        let outputs = template["Outputs"].as_mapping().unwrap();
        let has_output = outputs.values().any(|o| {
            let mut values = Vec::new();
            strings(&o["Value"], &mut values);
            values.iter().any(|v| v == &format!("{id}Url.FunctionUrl"))
        });
        assert!(
            has_output,
            "{id}: its URL is in Outputs, to paste into the provider"
        );
    }
    assert!(routes >= 1);
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
    let template = template();
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
fn every_provider_has_a_route_and_enabling_one_requires_its_secrets() {
    let template = template();
    let mut routes = Vec::new();
    for (_, function) in resources(&template, "AWS::Serverless::Function") {
        let mut values = Vec::new();
        let Some(route) = function["Properties"]["Environment"]["Variables"].get("HOOKCATCH_ROUTE")
        else {
            continue;
        };
        strings(route, &mut values);
        for value in values.iter().filter(|v| v.trim_start().starts_with('{')) {
            let route: serde_json::Value = serde_json::from_str(value).unwrap();
            routes.push(route["provider"].as_str().unwrap().to_owned());
        }
    }
    for provider in hookcatch::ProviderKind::ALL {
        assert!(
            routes.iter().any(|r| r == provider.as_str()),
            "{provider:?} has a route function"
        );
    }
    // Each secret parameter of an Enable* route is asserted non-empty by a Rule.
    let rules = template["Rules"].as_mapping().expect("a Rules section");
    let parameters = template["Parameters"].as_mapping().unwrap();
    for (name, _) in parameters {
        let name = name.as_str().unwrap();
        let is_route_secret = (name.ends_with("SecretParameter")
            || name.ends_with("TokenParameter")
            || name.ends_with("ClientStateParameter"))
            && name != "CatchRawApiKeyParameter";
        if !is_route_secret {
            continue;
        }
        let guarded = rules.values().any(|rule| {
            let mut texts = Vec::new();
            strings(&rule["Assertions"], &mut texts);
            texts.iter().any(|t| t == name)
        });
        assert!(guarded, "{name}: an enabled route must require it");
    }
}

#[test]
fn secrets_are_only_ssm_references() {
    let template = template();
    let mut routes_checked = 0;
    for (id, function) in resources(&template, "AWS::Serverless::Function") {
        let mut values = Vec::new();
        // Hydrators (HOOKCATCH_HYDRATORS) are evaluated by the test below.
        strings(
            &function["Properties"]["Environment"]["Variables"]["HOOKCATCH_ROUTE"],
            &mut values,
        );
        for value in values.iter().filter(|v| v.trim_start().starts_with('{')) {
            // `${Param}` placeholders stand for SSM parameter names in the `ssm:` prefix.
            let route: serde_json::Value = serde_json::from_str(value)
                .unwrap_or_else(|e| panic!("{id}: HOOKCATCH_ROUTE is not JSON ({e}): {value}"));
            routes_checked += 1;
            let channel_tokens = route["channels"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| &c["token"]);
            let all = route["secrets"]
                .as_array()
                .into_iter()
                .chain(route["verify_tokens"].as_array())
                .flatten()
                .chain(channel_tokens);
            for secret in all {
                let secret = secret.as_str().unwrap();
                assert!(
                    secret.starts_with("ssm:"),
                    "{id}: plain secret in the template"
                );
            }
        }
    }
    assert!(
        routes_checked >= ProviderKind::ALL.len(),
        "{routes_checked} routes"
    );
}

#[test]
fn consumer_hydrators_parse_and_take_secrets_only_from_ssm() {
    let template = template();
    let consumer = &template["Resources"]["ConsumerFunction"]["Properties"];
    // `!Sub [object, {Route: !If [condition, !Sub hydrator, "null"]}]`: evaluate it as a deploy
    // that enables every hydrator would, with each parameter at its default or a sample value.
    let Value::Tagged(sub) = &consumer["Environment"]["Variables"]["HOOKCATCH_HYDRATORS"] else {
        panic!("HOOKCATCH_HYDRATORS is a !Sub");
    };
    let object = sub.value[0].as_str().unwrap();
    let parameter = |name: &str| {
        template["Parameters"][name]["Default"]
            .as_str()
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| match name {
                "MicrosoftGraphSubscriptionId" => "f2a5d1b3-0000-4000-8000-000000000001".into(),
                _ => format!("/sample/{name}"),
            })
    };
    let fill = |text: &str| {
        let mut out = text.to_owned();
        while let Some(start) = out.find("${") {
            let end = start + out[start..].find('}').unwrap();
            let name = out[start + 2..end].to_owned();
            let value = if name.contains('.') {
                "https://sample.lambda-url.us-east-1.on.aws/".to_owned()
            } else {
                parameter(&name)
            };
            out.replace_range(start..=end, &value);
        }
        out
    };
    let mut enabled = object.to_owned();
    let mut disabled = object.to_owned();
    for (name, choice) in sub.value[1].as_mapping().unwrap() {
        let Value::Tagged(choice) = choice else {
            panic!("each hydrator is an !If")
        };
        let Value::Tagged(hydrator) = &choice.value[1] else {
            panic!("each hydrator is a !Sub")
        };
        assert_eq!(
            choice.value[2], "null",
            "a route without a hydrator is null"
        );
        // `!Sub text`, or `!Sub [text, {Var: !If [condition, !Sub part, ""]}]`: the parts enabled.
        let text = match &hydrator.value {
            Value::Sequence(parts) => {
                let mut text = parts[0].as_str().unwrap().to_owned();
                for (var, choice) in parts[1].as_mapping().unwrap() {
                    let Value::Tagged(choice) = choice else {
                        panic!("each optional part is an !If")
                    };
                    let Value::Tagged(part) = &choice.value[1] else {
                        panic!("each optional part is a !Sub")
                    };
                    assert_eq!(choice.value[2], "", "an optional part is empty when off");
                    let placeholder = format!("${{{}}}", var.as_str().unwrap());
                    text = text.replace(&placeholder, &fill(part.value.as_str().unwrap()));
                }
                text
            }
            text => text.as_str().unwrap().to_owned(),
        };
        let placeholder = format!("${{{}}}", name.as_str().unwrap());
        enabled = enabled.replace(&placeholder, &fill(&text));
        disabled = disabled.replace(&placeholder, "null");
    }
    let all = hookcatch::config::ConsumerEnv::from_env(&|name: &str| match name {
        "HOOKCATCH_TABLE" => Some("t".to_owned()),
        "HOOKCATCH_HYDRATORS" => Some(enabled.clone()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}: {enabled}"));
    assert_eq!(
        all.hydrators.keys().collect::<Vec<_>>(),
        ["microsoft-graph", "stripe", "zoho-crm"]
    );
    for hydrator in all.hydrators.values() {
        for secret in hydrator.secret_refs() {
            assert!(secret.is_external(), "{secret:?}");
        }
    }
    let none = hookcatch::config::ConsumerEnv::from_env(&|name: &str| match name {
        "HOOKCATCH_TABLE" => Some("t".to_owned()),
        "HOOKCATCH_HYDRATORS" => Some(disabled.clone()),
        _ => None,
    })
    .unwrap();
    assert!(none.hydrators.is_empty());
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
fn no_route_is_open_by_default_and_every_route_json_loads() {
    let template = template();
    for (id, function) in resources(&template, "AWS::Serverless::Function") {
        let mut values = Vec::new();
        strings(
            &function["Properties"]["Environment"]["Variables"]["HOOKCATCH_ROUTE"],
            &mut values,
        );
        for value in values.iter().filter(|v| v.trim_start().starts_with('{')) {
            // A deploy fills each `${Parameter}`: its default, else a URL or an SSM name.
            let mut value = value.clone();
            while let Some(start) = value.find("${") {
                let end = start + value[start..].find('}').unwrap();
                let name = &value[start + 2..end];
                let filled = match template["Parameters"][name]["Default"].as_str() {
                    Some(default) if !default.is_empty() => default.to_owned(),
                    _ if name.ends_with("Url") => "https://hooks.test/r".to_owned(),
                    _ => "/filled".to_owned(),
                };
                value.replace_range(start..=end, &filled);
            }
            let route: hookcatch::RouteConfig = serde_json::from_str(&value)
                .unwrap_or_else(|e| panic!("{id}: HOOKCATCH_ROUTE does not load ({e}): {value}"));
            route
                .validate()
                .unwrap_or_else(|e| panic!("{id}: HOOKCATCH_ROUTE is refused ({e}): {value}"));
        }
    }
    let parameters = &template["Parameters"];
    assert_eq!(
        parameters["EnableCatchRaw"]["Default"].as_str(),
        Some("false")
    );
    assert_eq!(
        parameters["CatchRawOpen"]["Default"].as_str(),
        Some("false")
    );
    // Enabling catch-raw needs a key or an explicit `CatchRawOpen=true`.
    let rule = &template["Rules"]["CatchRawNeedsAKeyOrOpen"];
    let mut texts = Vec::new();
    strings(&rule["Assertions"], &mut texts);
    for needed in ["CatchRawApiKeyParameter", "CatchRawOpen"] {
        assert!(
            texts.iter().any(|t| t == needed),
            "the rule checks {needed}"
        );
    }
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
    for (id, function) in resources(&template, "AWS::Serverless::Function") {
        let reserved = &function["Properties"]["ReservedConcurrentExecutions"];
        if function["Properties"]["CodeUri"].as_str() == Some("functions/ingest") {
            let mut texts = Vec::new();
            strings(reserved, &mut texts);
            assert!(
                texts.iter().any(|t| t == "RouteReservedConcurrency"),
                "{id}"
            );
        } else {
            assert!(
                reserved.is_null(),
                "{id}: the consumer scales by its event source"
            );
        }
    }
}

#[test]
fn parameters_spliced_into_json_cannot_break_it() {
    let template = template();
    let parameters = template["Parameters"].as_mapping().unwrap();
    // Every `!Sub` text that is JSON, and the parameters it splices in.
    fn subs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Tagged(tagged) if tagged.tag == "!Sub" => {
                let mut texts = Vec::new();
                strings(&tagged.value, &mut texts);
                out.extend(texts);
            }
            Value::Tagged(tagged) => subs(&tagged.value, out),
            Value::Sequence(items) => items.iter().for_each(|v| subs(v, out)),
            Value::Mapping(map) => map.values().for_each(|v| subs(v, out)),
            _ => {}
        }
    }
    let mut texts = Vec::new();
    subs(&template["Resources"], &mut texts);
    let mut checked = 0;
    for text in texts.iter().filter(|t| t.contains("{\"")) {
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            let end = start + rest[start..].find('}').unwrap();
            let name = &rest[start + 2..end];
            rest = &rest[end..];
            let Some(parameter) = parameters.get(name) else {
                continue; // a resource attribute or a pseudo parameter
            };
            checked += 1;
            let probes = [
                "a\"b",
                "/a\"b",
                "https://x\"",
                "a\\b",
                "/a\\b",
                "https://x\\",
                "1\"",
            ];
            if let Some(values) = parameter["AllowedValues"].as_sequence() {
                for value in values {
                    let value = value.as_str().unwrap_or_default();
                    assert!(!value.contains(['"', '\\']), "{name}: {value}");
                }
                continue;
            }
            let pattern = parameter["AllowedPattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} is spliced into JSON without an AllowedPattern"));
            let pattern = regex_lite::Regex::new(pattern).unwrap();
            for probe in probes {
                assert!(
                    !pattern.is_match(probe),
                    "{name} admits {probe:?}, which breaks the JSON"
                );
            }
        }
    }
    assert!(checked > 10, "{checked} spliced parameters");
}
