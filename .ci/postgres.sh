#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the store tests and print its URL.
# Usage: eval "$(.ci/postgres.sh start)"   ...   .ci/postgres.sh stop
set -euo pipefail
DIR=${FAIRSHELF_PG_DIR:-/tmp/fairshelf-pg}
PORT=${FAIRSHELF_PG_PORT:-55432}
case "${1:-start}" in
  start)
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2
    fi
    BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
    RUN=()
    [ "$(id -u)" = 0 ] && RUN=(runuser -u postgres --)
    rm -rf "$DIR" && mkdir -p "$DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; fi
    "${RUN[@]}" "$BIN/initdb" -D "$DIR/data" -A trust -U fairshelf >/dev/null
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR" start >&2
    "${RUN[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U fairshelf fairshelf_test
    echo "export FAIRSHELF_TEST_PG_URL=postgresql+psycopg://fairshelf@127.0.0.1:$PORT/fairshelf_test"
    ;;
  stop)
    BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)")
    RUN=()
    [ "$(id -u)" = 0 ] && RUN=(runuser -u postgres --)
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
    ;;
esac
