//! Routes on AWS from `hookcatch.toml`: `secrets set --aws`, `routes push` and `env-json` against
//! SSM on the loopback server, then the sam-built bootstraps run with exactly the `env-json`
//! files, reading their routes from SSM and queueing on SQS; the consumer reads every route's
//! hydrator from the same layout.

use std::collections::HashMap;
use std::path::Path;

use hookcatch::ports::EventStore;

use crate::fake_api::{API_KEY, FakeApi};
use crate::fake_runtime::{FakeRuntime, spawn};
use crate::support::{Stack, hookcatch_binary, repo_root, run_hookcatch, unique};

/// Runs `hookcatch` with `args` (and `env`), returning its stdout; a failure fails the test.
async fn hookcatch(args: &[&str], env: &[(&str, &str)]) -> String {
    let (ok, stdout, stderr) = run_hookcatch(args, env).await;
    assert!(ok, "hookcatch {args:?}: {stdout}{stderr}");
    stdout
}

/// `secrets set ROUTE signing --aws` for each route, from a development value.
async fn set_signing_secrets(routes: &[&str], stack_name: &str, config: &str) {
    for route in routes {
        hookcatch(
            &[
                "secrets",
                "set",
                route,
                "signing",
                "--from-env",
                "HC_TEST_SECRET",
                "--aws",
                "--stack",
                stack_name,
                "--config",
                config,
            ],
            &[("HC_TEST_SECRET", "dev-deploy-signing")],
        )
        .await;
    }
}

/// The Function URL event `hookcatch send … --print-event` prints (run from the repository, where
/// the samples are).
async fn signed_event(send: &[&str]) -> serde_json::Value {
    let output = tokio::process::Command::new(hookcatch_binary())
        .args(send)
        .current_dir(repo_root())
        .output()
        .await
        .unwrap();
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{send:?}: {e}: {}", String::from_utf8_lossy(&output.stderr)))
}

/// Every parameter under the stack's routes path (SecureStrings still encrypted).
async fn stack_parameters(stack: &Stack, stack_name: &str) -> Vec<aws_sdk_ssm::types::Parameter> {
    stack
        .ssm
        .get_parameters_by_path()
        .path(format!("/hookcatch/{stack_name}/routes"))
        .recursive(true)
        .send()
        .await
        .unwrap()
        .parameters()
        .to_vec()
}

/// The variables `env-json` wrote for one function (its only entry).
fn variables(json: &str, function: &str) -> HashMap<String, String> {
    let file: serde_json::Value = serde_json::from_str(json).unwrap();
    let entry = file[function]
        .as_object()
        .unwrap_or_else(|| panic!("env-json has no {function}: {json}"));
    entry
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn config(api_url: &str) -> String {
    format!(
        r#"
[[routes]]
name = "slack-a"
provider = "slack"
secrets = ["local:signing"]
event_type = "/event/type"
records = [{{ type = "slack-a-message", id = "/event/ts", data = "/event" }}]

[[routes]]
name = "slack-b"
provider = "slack"
secrets = ["local:signing"]
records = [{{ type = "slack-b-message", id = "/event_id", data = "/event" }}]

[[routes]]
name = "github"
provider = "github"
secrets = ["local:signing"]

[routes.hydrate]
kind = "http"
base_url = "{api_url}"
auth = {{ type = "bearer", token = "local:api-key" }}
requests = [{{ name = "issue", when = ["/action=opened"], path = "/issues/{{id}}", type = "issue", id = "/issue/id", version = "/updated_at" }}]
"#
    )
}

/// A GitHub `issues` delivery (the sample is a ping, which never hydrates) as a Function URL event.
fn github_issue_event(dir: &Path) -> std::path::PathBuf {
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/github-json.json")).unwrap(),
    )
    .unwrap();
    event["headers"]["x-github-event"] = "issues".into();
    event["headers"]["x-github-delivery"] = "d6c1f3a0-0000-4000-8000-000000000001".into();
    event["body"] = serde_json::json!({
        "action": "opened",
        "issue": {"id": 4242, "number": 7, "title": "as sent"},
        "repository": {"id": 1296269, "full_name": "octocat/Hello-World"},
    })
    .to_string()
    .into();
    let path = dir.join("github-issue.json");
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

#[tokio::test]
async fn routes_pushed_to_ssm_run_in_the_sam_built_bootstraps() {
    let stack = Stack::create(3).await;
    let api = FakeApi::start().await;
    api.put(
        "/issues/4242",
        serde_json::json!({"id": 4242, "title": "as fetched", "updated_at": "2026-12-02T08:00:00Z"}),
    );
    let dir = std::env::temp_dir().join(unique("hookcatch-deployed"));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("hookcatch.toml");
    std::fs::write(&config_path, config(&api.url)).unwrap();
    let config = config_path.to_str().unwrap();
    let name = unique("it");
    let stack_name = &name[..name.len().min(40)];

    // Pushing before the secrets exist refuses, naming the command for each.
    let refused = tokio::process::Command::new(hookcatch_binary())
        .args(["routes", "push", "--stack", stack_name, "--config", config])
        .output()
        .await
        .unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        message.contains(&format!(
            "hookcatch secrets set slack-b signing --aws --stack {stack_name}"
        )),
        "{message}"
    );

    // Each secret goes to SSM and to the local file (which `send` signs with).
    let secrets = [
        ("slack-a", "signing", "dev-slack-a-signing"),
        ("slack-b", "signing", "dev-slack-b-signing"),
        ("github", "signing", "dev-github-signing"),
        ("github", "api-key", API_KEY),
    ];
    for (route, secret, value) in secrets {
        let env = [("HC_TEST_SECRET", value)];
        let args = [
            "secrets",
            "set",
            route,
            secret,
            "--from-env",
            "HC_TEST_SECRET",
        ];
        hookcatch(&[&args[..], &["--config", config]].concat(), &env).await;
        hookcatch(
            &[
                &args[..],
                &["--aws", "--stack", stack_name, "--config", config],
            ]
            .concat(),
            &env,
        )
        .await;
    }
    let pushed = hookcatch(
        &["routes", "push", "--stack", stack_name, "--config", config],
        &[],
    )
    .await;
    assert!(
        pushed.contains("\"Routes=slacka,slackb,github\"")
            && pushed.contains("\"RouteConfigDigest="),
        "{pushed}"
    );

    // What SSM holds: each route's configuration, and no secret in plain text.
    for parameter in &stack_parameters(&stack, stack_name).await {
        let name = parameter.name().unwrap();
        let plain = *parameter.r#type().unwrap() == aws_sdk_ssm::types::ParameterType::String;
        if name.ends_with("/config") {
            assert!(plain, "{name}");
            let value = parameter.value().unwrap();
            for (_, _, secret) in secrets {
                assert!(!value.contains(secret), "{name} holds a secret");
            }
        } else {
            assert!(!plain, "{name} is a secret and must be a SecureString");
        }
    }

    // Each route's bootstrap, with exactly its env-json file, takes a signed request.
    let queue = stack.queue_url.as_str();
    let mut processes = Vec::new();
    let issue_event = github_issue_event(&dir);
    for (route, function) in [
        ("slack-a", "Routeslacka"),
        ("slack-b", "Routeslackb"),
        ("github", "Routegithub"),
    ] {
        let json = hookcatch(
            &[
                "env-json",
                route,
                "--stack",
                stack_name,
                "--queue-url",
                queue,
                "--config",
                config,
            ],
            &[],
        )
        .await;
        assert!(!secrets.iter().any(|(_, _, s)| json.contains(s)), "{json}");
        let env = variables(&json, function);
        let runtime = FakeRuntime::start().await;
        let (process, _stdout) = spawn(function, &runtime, &env);
        runtime.wait_for_poll().await;
        let mut send = vec![
            "send",
            "--route",
            route,
            "--print-event",
            "--config",
            config,
        ];
        let event_file = issue_event.to_str().unwrap();
        if route == "github" {
            send.extend(["--event", event_file]);
        } else {
            send.extend(["--event", "events/slack-events-json.json"]);
        }
        let event = signed_event(&send).await;
        let response = runtime.invoke(&event).await;
        assert_eq!(response["statusCode"], 200, "{route}: {response}");
        // A request signed with another route's secret is refused: each read its own.
        let foreign = if route == "slack-a" {
            "slack-b"
        } else {
            "slack-a"
        };
        if route != "github" {
            let mut send = send.clone();
            send[2] = foreign;
            let event = signed_event(&send).await;
            assert_eq!(runtime.invoke(&event).await["statusCode"], 401, "{route}");
        }
        processes.push((process, runtime));
    }

    // The consumer, with its env-json file, reads every route's hydrator from SSM.
    let json = hookcatch(
        &[
            "env-json",
            "consumer",
            "--stack",
            stack_name,
            "--queue-url",
            queue,
            "--table",
            &stack.table,
            "--config",
            config,
        ],
        &[],
    )
    .await;
    let env = variables(&json, "ConsumerFunction");
    let runtime = FakeRuntime::start().await;
    let (_consumer, _stdout) = spawn("ConsumerFunction", &runtime, &env);
    stack.consume_all(&runtime, 3).await;

    let store = stack.store();
    let slack_a = store
        .get_record("slack-a", "slack-a-message", "1795374237.000200")
        .await
        .unwrap();
    assert!(slack_a.is_some(), "slack-a's rule wrote its record");
    let slack_b = store
        .get_record("slack-b", "slack-b-message", "Ev0HOOKCATCH01")
        .await
        .unwrap();
    assert!(slack_b.is_some(), "slack-b's rule wrote its record");
    let issue = store
        .get_record("github", "issue", "4242")
        .await
        .unwrap()
        .expect("github's hydrator fetched the issue");
    assert_eq!(issue.data["title"], "as fetched");
    assert!(
        api.calls().iter().any(|(path, _)| path == "/issues/4242"),
        "{:?}",
        api.calls()
    );

    // A second push after a route is removed deletes its configuration (its secrets stay).
    let without_b = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace(
            "[[routes]]\nname = \"slack-b\"\nprovider = \"slack\"\nsecrets = [\"local:signing\"]\nrecords = [{ type = \"slack-b-message\", id = \"/event_id\", data = \"/event\" }]\n",
            "",
        );
    std::fs::write(&config_path, without_b).unwrap();
    let pushed = hookcatch(
        &["routes", "push", "--stack", stack_name, "--config", config],
        &[],
    )
    .await;
    assert!(
        pushed.contains(&format!(
            "removed /hookcatch/{stack_name}/routes/slackb/config"
        )) && pushed.contains("\"Routes=slacka,github\""),
        "{pushed}"
    );
    let gone = stack
        .ssm
        .get_parameter()
        .name(format!("/hookcatch/{stack_name}/routes/slackb/config"))
        .send()
        .await;
    assert!(gone.is_err());
}

/// `sam` as `deploy` runs it: records its arguments; `deploy` creates the route functions in moto
/// (and deletes those of routes that are gone) as CloudFormation would, applying the stack-wide
/// `RouteReservedConcurrency` to new ones; `list stack-outputs` answers each route's URL and
/// function ARN, and fails before the first deploy, as for a stack that does not exist.
const FAKE_SAM: &str = r#"#!/usr/bin/env python3
import io, json, os, sys, zipfile
log = os.environ["FAKE_SAM_LOG"]
with open(log, "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
args = sys.argv[1:]
stack = args[args.index("--stack-name") + 1] if "--stack-name" in args else None
def parameter(words, key):
    return next((a[len(key) + 1:] for a in words if a.startswith(key + "=")), None)
def function(route):
    return f"{stack}-Route{route}-Fake"
if args[0] == "deploy":
    import boto3
    region = os.environ["AWS_REGION"]
    lam, iam = boto3.client("lambda", region_name=region), boto3.client("iam", region_name=region)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    try:
        role = iam.create_role(RoleName=f"{stack}-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName=f"{stack}-role")["Role"]["Arn"]
    routes = parameter(args, "Routes").split(",")
    stack_wide = parameter(args, "RouteReservedConcurrency").strip('"')
    names = {f["FunctionName"] for f in lam.list_functions(MaxItems=1000)["Functions"]}
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "not run")
    for route in routes:
        if function(route) not in names:
            lam.create_function(FunctionName=function(route), Runtime="provided.al2023", Role=role,
                                Handler="bootstrap", Code={"ZipFile": code.getvalue()})
            if stack_wide:
                lam.put_function_concurrency(FunctionName=function(route),
                                             ReservedConcurrentExecutions=int(stack_wide))
    for name in names:
        if name.startswith(f"{stack}-Route") and name not in map(function, routes):
            lam.delete_function(FunctionName=name)
if args[:2] == ["list", "stack-outputs"]:
    deploys = [l.split() for l in open(log).read().splitlines() if l.startswith("deploy ")]
    if not deploys:
        sys.exit(f"Error: Stack with id {stack} does not exist")
    routes = parameter(deploys[-1], "Routes").split(",")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:"
    print(json.dumps([{"OutputKey": f"Route{r}Url", "OutputValue": f"https://{r}.lambda-url.us-east-1.on.aws/"}
                      for r in routes]
                     + [{"OutputKey": f"Route{r}FunctionArn", "OutputValue": arn + function(r)} for r in routes]
                     + [{"OutputKey": "EventsQueueUrl", "OutputValue": "https://sqs.test/q"}]))
"#;

/// A directory with the fake `sam` first on the PATH, and its log.
struct FakeSam {
    dir: std::path::PathBuf,
    path: String,
    log: std::path::PathBuf,
}

impl FakeSam {
    fn install(prefix: &str) -> FakeSam {
        let dir = std::env::temp_dir().join(unique(prefix));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let sam = bin.join("sam");
        std::fs::write(&sam, FAKE_SAM).unwrap();
        std::fs::set_permissions(&sam, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        FakeSam {
            path: format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            log: dir.join("sam.log"),
            dir,
        }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn deploy_pushes_the_routes_runs_sam_and_prints_each_url() {
    let stack = Stack::create(3).await;
    let sam = FakeSam::install("hookcatch-deploy");
    let (dir, log, path) = (&sam.dir, &sam.log, &sam.path);
    let config_path = dir.join("hookcatch.toml");
    std::fs::write(
        &config_path,
        format!(
            "[serve]\ndata = \"{}\"\n\n[[routes]]\nname = \"slack-a\"\nprovider = \"slack\"\nsecrets = [\"local:signing\"]\n\n[[routes]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [\"local:signing\"]\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let config = config_path.to_str().unwrap();
    let name = unique("dep");
    let stack_name = &name[..name.len().min(40)];
    set_signing_secrets(&["slack-a", "github"], stack_name, config).await;
    let env = [
        ("PATH", path.as_str()),
        ("FAKE_SAM_LOG", log.to_str().unwrap()),
    ];
    let deploy = [
        "deploy",
        "--stack",
        stack_name,
        "--parameter",
        "Architecture=x86_64",
        "--config",
        config,
    ];

    // --dry-run writes nothing and runs no sam.
    let dry = hookcatch(&[&deploy[..], &["--dry-run"]].concat(), &env).await;
    assert!(dry.contains("would run: sam build"), "{dry}");
    assert!(!log.exists(), "a dry run ran sam");
    assert!(
        stack_parameters(&stack, stack_name)
            .await
            .iter()
            .all(|p| !p.name().unwrap().ends_with("/config"))
    );

    let printed = hookcatch(&deploy, &env).await;
    let calls = std::fs::read_to_string(log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls[0], "build --parameter-overrides Architecture=x86_64");
    let prefix = format!(
        "deploy --stack-name {stack_name} --parameter-overrides Routes=slacka,github RouteConfigDigest="
    );
    assert!(calls[1].starts_with(&prefix), "{calls:?}");
    assert!(
        calls[1].ends_with(" Architecture=x86_64 RouteReservedConcurrency=\"\""),
        "{calls:?}"
    );
    assert_eq!(
        calls[2],
        format!("list stack-outputs --stack-name {stack_name} --output json")
    );
    for (route, url) in [
        ("slack-a", "https://slacka.lambda-url.us-east-1.on.aws/"),
        ("github", "https://github.lambda-url.us-east-1.on.aws/"),
    ] {
        let line = printed
            .lines()
            .find(|l| l.contains(&format!(" {route} ")))
            .unwrap_or_else(|| panic!("{route} is not in the table: {printed}"));
        assert!(line.contains(url), "{line}");
    }
    assert!(
        printed.contains(hookcatch::providers::paste_hint(
            hookcatch::ProviderKind::Github
        )),
        "{printed}"
    );
    let config_of = |route: &str| {
        let name = format!("/hookcatch/{stack_name}/routes/{route}/config");
        let ssm = stack.ssm.clone();
        async move { ssm.get_parameter().name(name).send().await }
    };
    let github = config_of("github").await.unwrap();
    let json = github.parameter().unwrap().value().unwrap();
    assert!(
        json.contains("local:signing") && !json.contains("dev-deploy-signing"),
        "{json}"
    );

    // `routes list` shows the deployed URLs from then on; with --aws, the secrets on the stack.
    let listed = hookcatch(&["routes", "list", "--json", "--config", config], &[]).await;
    assert!(
        listed.contains("\"deployed_url\":\"https://github.lambda-url.us-east-1.on.aws/\""),
        "{listed}"
    );
    let listed = hookcatch(
        &[
            "routes", "list", "--json", "--aws", "--stack", stack_name, "--config", config,
        ],
        &env,
    )
    .await;
    assert!(listed.contains("\"aws_secrets\":\"set\""), "{listed}");

    // A second deploy after `routes rm` removes that route's configuration.
    hookcatch(&["routes", "rm", "slack-a", "--config", config], &[]).await;
    let printed = hookcatch(&deploy, &env).await;
    assert!(
        printed.contains(&format!(
            "removed /hookcatch/{stack_name}/routes/slacka/config"
        )),
        "{printed}"
    );
    assert!(config_of("slacka").await.is_err());
    assert!(config_of("github").await.is_ok());
    let calls = std::fs::read_to_string(log).unwrap();
    let last_deploy = calls.lines().rfind(|l| l.starts_with("deploy ")).unwrap();
    assert!(last_deploy.contains(" Routes=github "), "{last_deploy}");
}

#[tokio::test]
async fn deploy_reserves_each_routes_concurrency_within_the_accounts_quota() {
    let stack = Stack::create(3).await;
    let sam = FakeSam::install("hookcatch-reserve");
    let name = unique("rsv");
    let stack_name = &name[..name.len().min(40)];
    // An account whose quota is 150: 50 can be reserved, since Lambda keeps 100 unreserved.
    let account = crate::fake_lambda::FakeLambdaAccount::start(150, stack_name).await;
    let config_path = sam.dir.join("hookcatch.toml");
    let write_config = |github: &str, slack: &str| {
        std::fs::write(
            &config_path,
            format!(
                "[serve]\ndata = \"{}\"\n\n[[routes]]\nname = \"github\"\nprovider = \"github\"\nsecrets = [\"local:signing\"]\n{github}\n\n[[routes]]\nname = \"slack-a\"\nprovider = \"slack\"\nsecrets = [\"local:signing\"]\n{slack}\n\n[[routes]]\nname = \"slack-b\"\nprovider = \"slack\"\nsecrets = [\"local:signing\"]\n",
                sam.dir.join("data").display()
            ),
        )
        .unwrap();
    };
    write_config(
        "reserved_concurrency = 30",
        "aws = { reserved_concurrency = 20 }",
    );
    let config = config_path.to_str().unwrap();
    set_signing_secrets(&["github", "slack-a", "slack-b"], stack_name, config).await;
    let log = sam.log.to_str().unwrap().to_owned();
    let env = [
        ("PATH", sam.path.as_str()),
        ("FAKE_SAM_LOG", log.as_str()),
        ("AWS_ENDPOINT_URL_LAMBDA", account.url.as_str()),
    ];
    let deploy = ["deploy", "--stack", stack_name, "--config", config];
    let sdk = hookcatch::aws::sdk_config(std::time::Duration::from_secs(10)).await;
    let lambda = hookcatch_cli::stack::reservations::Lambda::new(&sdk).unwrap();
    let reserved = |route: &str| {
        let function = format!("{stack_name}-Route{route}-Fake");
        let lambda = &lambda;
        async move { lambda.reserved_concurrency(&function).await.unwrap() }
    };

    // 30 + 20 = 50: exactly what the account can reserve.
    let printed = hookcatch(&deploy, &env).await;
    assert!(
        printed.contains("route github: reserved concurrency 30 (was none)")
            && printed.contains("route slack-a: reserved concurrency 20 (was none)")
            && !printed.contains("route slack-b:"),
        "{printed}"
    );
    assert_eq!(reserved("github").await, Some(30));
    assert_eq!(reserved("slacka").await, Some(20));
    assert_eq!(reserved("slackb").await, None);
    // The functions' own configuration never carries it: it is the function's setting.
    let github = stack
        .ssm
        .get_parameter()
        .name(format!("/hookcatch/{stack_name}/routes/github/config"))
        .send()
        .await
        .unwrap();
    assert!(
        !github
            .parameter()
            .unwrap()
            .value()
            .unwrap()
            .contains("reserved")
    );

    // 90 + 20 would leave 40 unreserved: refused before anything changes, with the numbers.
    write_config(
        "reserved_concurrency = 90",
        "aws = { reserved_concurrency = 20 }",
    );
    let calls_before = sam.calls().len();
    let (ok, _, stderr) = run_hookcatch(&deploy, &env).await;
    assert!(!ok, "a deploy over the quota succeeded");
    assert!(
        stderr.contains("reserve 110")
            && stderr.contains("at most 50")
            && stderr.contains("quota is 150")
            && stderr.contains("100 unreserved"),
        "{stderr}"
    );
    let calls = sam.calls();
    assert_eq!(
        calls[calls_before..],
        [format!(
            "list stack-outputs --stack-name {stack_name} --output json"
        )],
        "only the stack's outputs were read"
    );
    assert_eq!(reserved("github").await, Some(30));

    // Lowered on one route and removed from another: both applied, the removal first.
    write_config("reserved_concurrency = 40", "");
    let printed = hookcatch(&deploy, &env).await;
    let github_line = printed
        .find("route github: reserved concurrency 40 (was 30)")
        .unwrap_or_else(|| panic!("{printed}"));
    let slack_line = printed
        .find("route slack-a: reserved concurrency none (was 20)")
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(slack_line < github_line, "{printed}");
    assert_eq!(reserved("github").await, Some(40));
    assert_eq!(reserved("slacka").await, None);
}
