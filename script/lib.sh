# script/lib.sh: shell code shared by script/server, script/test and .ci/run:
# the Debian package list, installing what is missing, the build, and a private
# PostgreSQL cluster (initdb/pg_ctl as the "postgres" OS user when we are root,
# because PostgreSQL refuses to run as root).
#
# Source it from bash after setting -euo pipefail; it defines functions and
# variables only and changes nothing by itself.

SCANQA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Everything needed to build, serve and test, as Debian 12 package names.
SCANQA_PACKAGES=(
	build-essential autoconf automake pkg-config
	libfcgi-dev libjson-c-dev libpq-dev libssl-dev libqrencode-dev libpng-dev
	postgresql nginx pgbouncer
	libdbd-pg-perl libjson-perl
	curl procps valgrind clang libclang-rt-14-dev
	zbar-tools
)

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# as_root CMD...: runs CMD as root, through sudo when we are not root.
as_root() {
	if is_root; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root for: $* (install sudo or run as root)"
	fi
}

# pkg_installed NAME: true when dpkg says NAME is installed. Any nginx flavour
# (nginx, nginx-light, nginx-core, nginx-full, nginx-extras) satisfies "nginx".
pkg_installed() {
	local name=$1 p
	if [ "$name" = nginx ]; then
		for p in nginx nginx-light nginx-core nginx-full nginx-extras; do
			if pkg_installed_exact "$p"; then return 0; fi
		done
		return 1
	fi
	pkg_installed_exact "$name"
}

pkg_installed_exact() {
	local status
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
	case "$status" in ii*) return 0 ;; *) return 1 ;; esac
}

# ensure_packages: installs the packages of SCANQA_PACKAGES that are missing,
# running "apt-get update" only when something has to be installed.
ensure_packages() {
	local missing=() p
	for p in "${SCANQA_PACKAGES[@]}"; do
		pkg_installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing missing packages: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	# Installing postgresql/nginx/haproxy/pgbouncer may start their system
	# services; we never use them (our own instances listen on private sockets,
	# other ports, or inside network namespaces).
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ensure_node: node and npm, for the npm projects under t/ (the scanner app's
# browser tests and benchmark, the Zod differential test). Debian's nodejs and
# npm are installed only when node or npm is missing (a nodesource nodejs, for
# one, already brings its own npm and conflicts with Debian's).
ensure_node() {
	local missing=()
	command -v node >/dev/null 2>&1 || missing+=(nodejs)
	command -v npm >/dev/null 2>&1 || missing+=(npm)
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# npm_ci DIR: installs DIR's pinned npm packages (package-lock.json) into
# DIR/node_modules with "npm ci", unless they are there already and the lock file
# has not changed since.
npm_ci() {
	local dir=$1
	if [ -f "$dir/node_modules/.package-lock.json" ] \
		&& [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
		return 0
	fi
	say "npm ci in $dir"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

# ensure_browser_tests: Debian's chromium, node, npm and t/browser/node_modules
# (playwright-core, exactly as t/browser/package-lock.json pins it), for
# script/test and script/bench (script/server needs none of them).
ensure_browser_tests() {
	local SCANQA_PACKAGES=(chromium)   # ensure_packages reads this copy
	ensure_packages
	ensure_node
	npm_ci "$SCANQA_ROOT/t/browser"
}

# ensure_topology_tests: what t/topology_netns.t needs beyond SCANQA_PACKAGES,
# for script/test only: HAProxy (the edge, and the router in front of
# PostgreSQL) and iproute2's "ip netns".
ensure_topology_tests() {
	local SCANQA_PACKAGES=(haproxy iproute2)   # ensure_packages reads this copy
	ensure_packages
}

# build: autoreconf, configure with warnings as errors, make. Extra configure
# arguments may be given (e.g. --enable-sanitizers). Re-runs configure only
# when its arguments changed or it never ran.
build() {
	local args="--enable-werror $*" stamp="$SCANQA_ROOT/.run/configure-args"
	cd "$SCANQA_ROOT"
	mkdir -p .run
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		say "autoreconf -fi"
		autoreconf -fi
	fi
	if [ ! -f Makefile ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$args" ] \
		|| [ configure -nt Makefile ]; then
		say "./configure $args"
		# shellcheck disable=SC2086
		./configure $args
		# Objects built with other flags (e.g. sanitizers) are not rebuilt by make.
		if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$args" ]; then
			make clean >/dev/null
		fi
		printf '%s' "$args" >"$stamp"
	fi
	say "make -j2"
	make -j2
}

# ---- private PostgreSQL clusters -------------------------------------------

# pg_run CMD...: runs a PostgreSQL server binary as the cluster's OS user
# ("postgres" when we are root, ourselves otherwise). As postgres it starts in /,
# since the clone may sit where postgres cannot enter (/root, a 0700 home), and
# PostgreSQL's programs refuse to run from a directory they cannot read; every
# path given must then be absolute.
pg_run() {
	if is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# A cluster lives in one directory BASE, owned by the cluster's OS user:
#   BASE/data (PGDATA), BASE/sock (its only socket: no TCP), BASE/postgresql.log

# pg_prepare_base BASE: creates BASE owned by the cluster's OS user, with every
# parent directory traversable by it.
pg_prepare_base() {
	local base=$1 d
	mkdir -p "$base"
	if is_root; then
		chown postgres:postgres "$base"
		d=$(dirname "$base")
		while [ "$d" != / ]; do
			if ! (cd / && runuser -u postgres -- test -x "$d"); then
				say "letting the postgres user traverse $d (chmod o+x)"
				chmod o+x "$d"
			fi
			d=$(dirname "$d")
		done
	fi
	chmod 0711 "$base"
}

# pg_init BASE: initdb with trust auth (local socket only), superuser "postgres", UTF-8.
pg_init() {
	local base=$1
	pg_prepare_base "$base"
	pg_run mkdir -p "$base/data" "$base/sock"
	pg_run chmod 0755 "$base/sock"
	pg_run "$PG_BINDIR/initdb" -D "$base/data" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 --no-sync >"$base/initdb.log" 2>&1 \
		|| { cat "$base/initdb.log" >&2; die "initdb failed in $base"; }
}

# pg_start BASE PORT [fast]: starts the cluster listening on BASE/sock only.
# "fast" turns fsync off (tests only). Waits until it accepts connections.
pg_start() {
	local base=$1 port=$2 mode=${3:-}
	local opts="-c listen_addresses='' -k '$base/sock' -p $port"
	[ "$mode" = fast ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	pg_run "$PG_BINDIR/pg_ctl" -D "$base/data" -o "$opts" -l "$base/postgresql.log" -w -t 60 start >/dev/null \
		|| { tail -n 30 "$base/postgresql.log" >&2; die "PostgreSQL did not start in $base"; }
}

# pg_stop BASE: fast shutdown; quiet when it is not running.
pg_stop() {
	local base=$1
	[ -f "$base/data/postmaster.pid" ] || return 0
	pg_run "$PG_BINDIR/pg_ctl" -D "$base/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# pg_psql SOCKDIR PORT DB [psql args...]: psql as the superuser, stopping on errors.
pg_psql() {
	local sock=$1 port=$2 db=$3
	shift 3
	psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d "$db" "$@"
}

# pg_create_roles SOCKDIR PORT: the schema owner, the daemon's role, and the two
# NOLOGIN roles that own the SECURITY DEFINER functions (scanqa_api, scanqa_auth;
# the owner is their member so that migration 008 can give them functions). They
# must exist before migrate, because the migrations grant to them.
pg_create_roles() {
	local sock=$1 port=$2
	pg_psql "$sock" "$port" postgres <<'SQL'
DO $$
DECLARE
	r text[];
BEGIN
	FOREACH r SLICE 1 IN ARRAY ARRAY[['scanqa_owner', 'LOGIN'], ['scanqa_app', 'LOGIN'],
	                                  ['scanqa_api', 'NOLOGIN'], ['scanqa_auth', 'NOLOGIN']] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r[1]) THEN
			EXECUTE format('CREATE ROLE %I %s', r[1], r[2]);
		END IF;
		IF r[2] = 'NOLOGIN' AND NOT pg_has_role('scanqa_owner', r[1], 'MEMBER') THEN
			EXECUTE format('GRANT %I TO scanqa_owner', r[1]);
		END IF;
	END LOOP;
END
$$;
SQL
}

# pg_create_db SOCKDIR PORT NAME: an empty database owned by scanqa_owner.
pg_create_db() {
	local sock=$1 port=$2 name=$3
	pg_psql "$sock" "$port" postgres -c "CREATE DATABASE \"$name\" OWNER scanqa_owner"
}

# pg_drop_db SOCKDIR PORT NAME
pg_drop_db() {
	local sock=$1 port=$2 name=$3
	pg_psql "$sock" "$port" postgres -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)"
}

# conninfo_quote VALUE: VALUE as a libpq conninfo value in single quotes, with
# backslashes and single quotes escaped (libpq's "Connection Strings": a clone
# path may hold a space).
conninfo_quote() {
	local v=${1//\\/\\\\}
	v=${v//\'/\\\'}
	printf "'%s'" "$v"
}

# scanqa_conf_for FILE SOCKDIR PORT DB LISTEN SOCKET_GROUP [TREE]: writes a daemon
# config derived from TREE's conf/scanqa.conf (default: this tree's), with only
# the connection, listen, socket group and migration settings replaced for a
# private cluster. TREE may be an earlier release (script/bench --before): a
# setting its own file does not have (status_listen) is left out, since its
# binary would refuse it.
scanqa_conf_for() {
	local out=$1 sock=$2 port=$3 db=$4 listen=$5 group=$6 tree=${7:-$SCANQA_ROOT}
	local base="$tree/conf/scanqa.conf"
	sock=$(conninfo_quote "$sock")
	{
		grep -Ev '^[[:space:]]*(conninfo|admin_conninfo|listen|status_listen|migrations_dir|socket_group)[[:space:]]*=' \
			"$base"
		echo
		echo "# replaced for a private PostgreSQL cluster by script/lib.sh"
		echo "conninfo = \"dbname=$db user=scanqa_app host=$sock port=$port\""
		echo "admin_conninfo = \"dbname=$db user=scanqa_owner host=$sock port=$port\""
		echo "listen = \"$listen\""
		if grep -Eq '^[[:space:]]*status_listen[[:space:]]*=' "$base"; then
			echo "status_listen = \"$(status_socket_for "$listen")\""
		fi
		echo "socket_group = $group"
		echo "migrations_dir = \"$tree/sql\""
	} >"$out"
}

# status_socket_for LISTEN: the status socket next to a unix listen socket, as
# production has it (/run/scanqa/scanqa.sock -> /run/scanqa/scanqa-status.sock).
status_socket_for() {
	local l=$1
	echo "${l%.sock}-status.sock"
}

# ---- nginx ------------------------------------------------------------------

# nginx_user_line: the "user" directive for a private nginx. As root the
# production arrangement applies (workers as www-data, which reach the daemon
# through the socket's group); otherwise nginx runs as ourselves.
nginx_user_line() {
	if is_root && getent passwd www-data >/dev/null && getent group www-data >/dev/null; then
		echo 'user www-data;'
	elif is_root; then
		echo 'user root;'
	fi
}

# socket_group_for_nginx: the socket_group that matches nginx_user_line.
socket_group_for_nginx() {
	if is_root && getent group www-data >/dev/null; then echo www-data; fi
}

# nginx_conf_for DIR PORT SOCKET: writes DIR/nginx.conf for a private nginx on
# 127.0.0.1:PORT (pid, logs and temp files in DIR) whose server block includes
# conf/nginx/scanqa.conf with only the daemon's socket path and the scanner
# app's directory (a copy of web/ in DIR/web) replaced, and whose
# http block includes conf/nginx/scanqa-http.conf (the rate limit zone) as it is.
nginx_conf_for() {
	local dir=$1 port=$2 sock=$3
	mkdir -p "$dir/tmp"
	cp /etc/nginx/fastcgi_params "$dir/fastcgi_params"
	# The scanner app is served from a copy that nginx's workers (www-data when
	# we are root) can read wherever the clone lives.
	rm -rf "$dir/web"
	cp -R "$SCANQA_ROOT/web" "$dir/web"
	chmod -R a+rX "$dir/web"
	sed -e "s#unix:/run/scanqa/scanqa\.sock#unix:$sock#" \
		-e "s#unix:/run/scanqa/scanqa-status\.sock#$(status_socket_for "unix:$sock")#" \
		-e "s#alias /usr/share/scanqa/web/\([^;]*\);#alias \"$dir/web/\\1\";#" \
		"$SCANQA_ROOT/conf/nginx/scanqa.conf" >"$dir/scanqa.conf"
	cp "$SCANQA_ROOT/conf/nginx/scanqa-http.conf" "$dir/scanqa-http.conf"
	cat >"$dir/nginx.conf" <<NGINX
# written by script/lib.sh (nginx_conf_for)
daemon off;
master_process on;
worker_processes 1;
$(nginx_user_line)
pid $dir/nginx.pid;
error_log $dir/error.log;

events {
    worker_connections 256;
}

http {
    access_log $dir/access.log;
    client_body_temp_path $dir/tmp/body;
    fastcgi_temp_path $dir/tmp/fastcgi;
    proxy_temp_path $dir/tmp/proxy;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type application/octet-stream;

    include $dir/scanqa-http.conf;

    server {
        listen 127.0.0.1:$port;
        server_name localhost;
        server_tokens off;

        include $dir/scanqa.conf;
    }
}
NGINX
}

# ---- builds in a copy of the tree -------------------------------------------
# The sanitizer and fuzzer builds need other configure options than the normal
# build, and autotools cannot configure a second build directory next to a
# configured source tree. So each lives in a copy under .run/ that is brought up
# to date file by file: unchanged files keep their time stamps, and make rebuilds
# only what changed.

# sync_tree DEST: copies the source files (tracked and untracked, not ignored)
# into DEST when they differ, and removes files that are no longer sources.
sync_tree() {
	local dest=$1 f list
	mkdir -p "$dest"
	list=$(mktemp)
	if git -C "$SCANQA_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$SCANQA_ROOT" ls-files -z --cached --others --exclude-standard >"$list"
	else
		(cd "$SCANQA_ROOT" && find . -path ./.run -prune -o -type f -print0) >"$list"
	fi
	while IFS= read -r -d '' f; do
		f=${f#./}
		[ -f "$SCANQA_ROOT/$f" ] || continue
		if ! cmp -s "$SCANQA_ROOT/$f" "$dest/$f"; then
			mkdir -p "$dest/$(dirname "$f")"
			# A changed file gets the time of the copy, not its own: an object
			# built there from an older copy may be newer than the source's
			# mtime, and make would keep it.
			cp --preserve=mode "$SCANQA_ROOT/$f" "$dest/$f"
		fi
	done <"$list"
	# A source deleted here is deleted there (the build outputs stay).
	if [ -f "$dest/.sources" ]; then
		while IFS= read -r -d '' f; do
			f=${f#./}
			[ -e "$SCANQA_ROOT/$f" ] || rm -f "$dest/$f"
		done <"$dest/.sources"
	fi
	mv "$list" "$dest/.sources"
}
