# Shared by scripts/test and scripts/bench (sourced, not run): pinned Python tools, the host
# architecture for `sam build`, and moto on a free loopback port.

# Each step says when it starts, in seconds since the script did, so a log shows where time goes.
SECONDS=0
step() { printf '\n==> [%4ds] %s\n' "$SECONDS" "$*"; }

# Pinned moto, cfn-lint, SAM CLI and cargo-lambda in .venv (reinstalled when the pins change).
python_tools() {
  if [ ! -f .venv/.pins ] || ! cmp -s scripts/requirements-dev.txt .venv/.pins; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-dev.txt
    cp scripts/requirements-dev.txt .venv/.pins
  fi
  export PATH="$PWD/.venv/bin:$PATH"
  export SAM_CLI_TELEMETRY=0
}

# Builds the functions for this machine's architecture, so what SAM packaged can run here (deploys
# default to arm64; see the Architecture parameter).
sam_build_host() {
  local arch
  case "$(uname -m)" in
    aarch64 | arm64) arch=arm64 ;;
    *) arch=x86_64 ;;
  esac
  # The template tests and the bootstrap tests use these three routes (two Slack apps and a GitHub),
  # by id: their names without `-`.
  sam build --beta-features --parameter-overrides "Architecture=$arch" "Routes=slacka,slackb,github"
  export HOOKCATCH_SAM_BUILD_DIR="$PWD/.aws-sam/build"
}

# Starts moto on a free loopback port (stopped when the script exits) and points the AWS SDK at it.
start_moto() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p target
  moto_server -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
  python3 - "$port" <<'PY'
import socket, sys, time
deadline = time.time() + 30
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("moto did not start; see target/moto.log")
PY
  unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_EC2_METADATA_DISABLED=true
}
