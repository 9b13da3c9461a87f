# Shared by the benchmarks: settings, tool checks, a scratch folder cleaned on exit, an
# nginx config writer, a port wait, the wrk load (500-byte POST with X-Region: EU) and the
# nginx `return 200` backend. Source it from a benchmark script after `cd` to the repository.

DURATION="${DURATION:-${1:-10s}}"
CONNECTIONS=50
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
BINARY="${SWITCHBOARD_BINARY:-.build/release/switchboard}"

for tool in "$NGINX" wrk "$BINARY"; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "$tool" ] || { echo "missing: $tool (run 'make bench')" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/switchboard-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

nginx_config() { # name workers server-block
    cat > "$WORK/$1.conf" <<CONF
daemon off;
user root;
worker_processes $2;
error_log $WORK/$1-error.log warn;
pid $WORK/$1.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/$1-body;
    proxy_temp_path $WORK/$1-proxy;
    fastcgi_temp_path $WORK/$1-fastcgi;
    uwsgi_temp_path $WORK/$1-uwsgi;
    scgi_temp_path $WORK/$1-scgi;
    keepalive_requests 100000;
    $3
}
CONF
}

wait_for_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 500)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["X-Region"] = "EU"
LUA

load() { # url [lua script] -> prints requests/sec; fails on errors
    local script="${2:-$WORK/post.lua}"
    wrk -t1 -c"$CONNECTIONS" -d2s -s "$script" "$1" >/dev/null
    local out
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$script" "$1")
    echo "$out" > "$WORK/last-wrk.txt"
    if grep -q "Non-2xx" <<<"$out"; then
        echo "errors during load on $1:" >&2
        echo "$out" >&2
        exit 1
    fi
    awk '/Requests\/sec/ { print $2 }' <<<"$out"
}

start_backend() { # port
    nginx_config backend 1 "server { listen 127.0.0.1:$1; location / { return 200 'ok'; } }"
    "$NGINX" -c "$WORK/backend.conf" -p "$WORK" & PIDS+=($!)
    wait_for_port "$1"
}

# The header-routed route of the proxy benchmark, forwarding to the backend on port $1.
write_bench_route() { # backend-port
    mkdir -p "$WORK/routes"
    cat > "$WORK/routes/bench.yaml" <<YAML
routes:
  - id: bench
    from: http:/bench?method=POST
    steps:
      - choice:
          - when: { header: X-Region, equals: EU }
            steps: [ { to: "http://127.0.0.1:$1/eu" } ]
          - otherwise:
              - to: "http://127.0.0.1:$1/other"
YAML
}
