# Sourced by bench/callgrind.sh and bench/lag.sh.
#
# `one_get_scenario FILE RATE SECS` writes bench.py's scenario: one GET of /bench per
# workflow, constant arrivals at RATE/s for SECS s, nothing judged.
one_get_scenario() {
    cat > "$1" <<YAML
name: bench
workflow:
  - name: get
    request: { method: GET, path: /bench }
load:
  arrival: constant
  stages:
    - { for: ${3}s, rate: $2 }
  max_in_flight: 100000
  request_timeout: 10s
checks: { load_delivered: false }
slos:
  - { name: anything, metric: failure_rate, max: 100% }
YAML
}

# `start_nginx DIR` starts Debian's
# nginx as bench.py does (one worker, `return 200 "ok\n"`, pinned to core 0) on a free
# 127.0.0.1 port, with its files in DIR; sets `port` and `nginx_pid` and returns once it
# accepts connections. The caller stops it (kill "$nginx_pid").
start_nginx() {
    local work=$1
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $work/nginx.pid;
error_log $work/error.log error;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location / { return 200 "ok\n"; }
  }
}
CONF
    taskset -c 0 nginx -c "$work/nginx.conf" -p "$work" &
    nginx_pid=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nginx did not listen on 127.0.0.1:$port within 5 s" >&2
    return 1
}
