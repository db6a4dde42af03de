#!/usr/bin/env bash
# Local ActiveMQ Classic (Debian's `activemq` package) without systemd, with the project's config.
#   activemq.sh start|stop|restart|status
# Environment (all optional; tests use them to run private instances):
#   ACTIVEMQ_BASE        instance directory (default: <repo>/var/activemq)
#   ACTIVEMQ_STOMP_PORT  STOMP port (61613)        ACTIVEMQ_OPENWIRE_PORT  OpenWire port (61616)
#   ACTIVEMQ_STOMP_SSL_PORT + ACTIVEMQ_KEYSTORE (PKCS#12) + ACTIVEMQ_KEYSTORE_PASSWORD: stomp+ssl
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
base=${ACTIVEMQ_BASE:-$root/var/activemq}
stomp_port=${ACTIVEMQ_STOMP_PORT:-61613}
openwire_port=${ACTIVEMQ_OPENWIRE_PORT:-61616}
home=/usr/share/activemq
pidfile=$base/data/activemq.pid

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$stomp_port") 2>/dev/null; }
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  if listening; then echo "ActiveMQ already answering on 127.0.0.1:$stomp_port"; return 0; fi
  if [ ! -f "$home/bin/activemq.jar" ]; then
    bash "$here/system-packages.sh"
  fi
  mkdir -p "$base/conf" "$base/data"
  cp "$here/activemq/log4j.properties" "$base/conf/"
  local xml ssl_props=()
  xml=$(cat "$here/activemq/activemq.xml")
  if [ -n "${ACTIVEMQ_STOMP_SSL_PORT:-}" ]; then
    local ctx='<sslContext><sslContext keyStore="file:${keystore}" keyStorePassword="${keystore.password}" keyStoreType="PKCS12"/></sslContext>'
    local conn='<transportConnector name="stomp+ssl" uri="stomp+ssl://127.0.0.1:${stomp.ssl.port}"/>'
    xml=${xml/'<!--SSL_CONTEXT-->'/$ctx}
    xml=${xml/'<!--SSL_CONNECTOR-->'/$conn}
    ssl_props=("-Dstomp.ssl.port=$ACTIVEMQ_STOMP_SSL_PORT" "-Dkeystore=$ACTIVEMQ_KEYSTORE"
               "-Dkeystore.password=${ACTIVEMQ_KEYSTORE_PASSWORD:-changeit}")
  fi
  printf '%s\n' "$xml" > "$base/conf/activemq.xml"
  nohup java -Xms64m -Xmx512m -Djava.awt.headless=true \
    -Dactivemq.home="$home" -Dactivemq.base="$base" -Dactivemq.conf="$base/conf" \
    -Dactivemq.data="$base/data" -Dlog4j.configuration="file:$base/conf/log4j.properties" \
    -Dstomp.port="$stomp_port" -Dopenwire.port="$openwire_port" "${ssl_props[@]}" \
    -jar "$home/bin/activemq.jar" start "xbean:file:$base/conf/activemq.xml" \
    > "$base/data/console.log" 2>&1 &
  echo $! > "$pidfile"
  # Polled every 0.1 s: the broker is usually up in 1-2 s, and restart tests wait for it.
  for _ in $(seq 1 600); do
    if listening; then echo "ActiveMQ ready on 127.0.0.1:$stomp_port (STOMP)"; return 0; fi
    if ! running; then break; fi
    sleep 0.1
  done
  echo "ActiveMQ did not start; see $base/data/console.log and $base/data/activemq.log" >&2
  tail -n 20 "$base/data/console.log" >&2 || true
  return 1
}

stop() {
  running || { rm -f "$pidfile"; return 0; }
  local pid; pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "ActiveMQ stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if listening; then echo running; else echo stopped; exit 1; fi ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
