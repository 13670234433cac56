#!/usr/bin/env bash
# The Debian package and the install rules, from this build directory (no
# second build): cpack -G DEB; its metadata (dpkg-deb -f/-I: version from
# project(VERSION), Depends, maintainer scripts, conffiles) and contents
# (dpkg-deb -c); installed into a temporary root (dpkg-deb -x): every
# program's --version, and a broker, a worker and a client from there run as
# the units run them, with the packaged config files (paths and ports moved
# into the scratch folder), answering a document, the journal, storage and
# logs where the configs put them; a misspelled config key refused
# by name; the units pass `systemd-analyze verify` and score under a threshold
# in `systemd-analyze security --offline`; `cmake --install --prefix` with
# DESTDIR names the prefix in the units.
source "$(dirname "$0")/lib.sh"

for tool in cpack dpkg-deb dpkg-shlibdeps file systemd-analyze; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/setup.sh (it installs dpkg-dev, file, systemd)"
done
version=$(sed -n 's/^project(carico VERSION \([0-9][0-9.]*\).*/\1/p' "$CARICO_SOURCE/CMakeLists.txt")
[ -n "$version" ] || fail "no project(carico VERSION ...) in CMakeLists.txt"
unitdir=$(sed -n 's/^CARICO_UNITDIR:PATH=//p' "$CARICO_BIN/CMakeCache.txt")
[ -n "$unitdir" ] || fail "CARICO_UNITDIR is not in the CMake cache"
programs=(carico-broker carico-worker carico-client carico-keygen)

# ---------------------------------------------------------------- cpack
# The package lands in $WORK; CPack's install step finds the build up to date.
(cd "$WORK" && cpack -G DEB --config "$CARICO_BIN/CPackConfig.cmake" -B "$WORK/pkg") \
  >"$WORK/cpack.log" 2>&1 || fail "cpack -G DEB failed (see $WORK/cpack.log)"
debs=("$WORK"/pkg/carico_*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one carico_*.deb, got: ${debs[*]}"
deb=${debs[0]}
[ "$(basename "$deb")" = "carico_${version}_$(dpkg --print-architecture).deb" ] ||
  fail "package file name $(basename "$deb")"

# Metadata.
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = carico ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), expected $version"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
[ "$(field Section)" = net ] || fail "Section: $(field Section)"
depends=$(field Depends)
depends_names=$(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ .*//')  # one package name a line
needed=(adduser init-system-helpers libzmq5 libsqlite3-0 libedit2 libc6 libstdc++6)
# The broker's allocator, when this build links it (tests/CMakeLists.txt).
[ "${CARICO_ALLOCATOR:-}" = jemalloc ] && needed+=(libjemalloc2)
for dep in "${needed[@]}"; do
  grep -qxF "$dep" <<<"$depends_names" || fail "Depends lacks $dep: $depends"
done
dpkg-deb -I "$deb" >"$WORK/info.txt"
for script in postinst prerm postrm conffiles; do
  grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$script( |$)" "$WORK/info.txt" ||
    fail "the control archive has no $script: $(cat "$WORK/info.txt")"
done
dpkg-deb -e "$deb" "$WORK/control"
for script in postinst prerm postrm; do
  [ -x "$WORK/control/$script" ] || fail "$script is not executable"
  sh -n "$WORK/control/$script" || fail "$script is not valid sh"
done
grep -q 'adduser --system --group' "$WORK/control/postinst" || fail "postinst makes no system user"
[ "$(sort "$WORK/control/conffiles")" = "$(printf '/etc/carico/broker.conf\n/etc/carico/worker.conf')" ] ||
  fail "conffiles: $(cat "$WORK/control/conffiles")"

# Contents: exactly what an operator needs, nothing from the build or the tests.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | sort >"$WORK/contents.txt"
for path in "${programs[@]/#//usr/bin/}" /etc/carico/broker.conf /etc/carico/worker.conf \
            "$unitdir/carico-broker.service" "$unitdir/carico-worker@.service" \
            /usr/share/doc/carico/README.md /usr/share/doc/carico/security.md \
            /usr/share/doc/carico/packaging.md; do
  grep -qxF "$path" "$WORK/contents.txt" || fail "the package lacks $path"
done
if grep -E 'test_|carico-bench|/usr/local|CMakeFiles|\.a$' "$WORK/contents.txt"; then
  fail "the package holds build or test files"
fi
dpkg-deb -c "$deb" | grep -E ' \./usr/bin/carico-broker$' | grep -q '^-rwxr-xr-x root/root' ||
  fail "carico-broker is not root-owned 0755"

# ---------------------------------------------------------------- installed in a temporary root
root=$WORK/root
dpkg-deb -x "$deb" "$root"
for p in "${programs[@]}"; do
  out=$("$root/usr/bin/$p" --version) || fail "$p --version exited non-zero"
  [ "$out" = "$p $version" ] || fail "$p --version said '$out', expected '$p $version'"
done
file "$root/usr/bin/carico-broker" | grep -q ', stripped' || fail "carico-broker is not stripped"
grep -qx "ExecStart=/usr/bin/carico-broker --config /etc/carico/broker.conf" \
  "$root$unitdir/carico-broker.service" || fail "the broker unit's ExecStart"
grep -q "^ExecStart=/usr/bin/carico-worker --config /etc/carico/worker.conf --name %i " \
  "$root$unitdir/carico-worker@.service" || fail "the worker unit's ExecStart"

# The packaged programs run as the units run them, with the packaged configs,
# only the machine's paths and ports moved into the scratch folder.
fport=$(free_port); bport=$(free_port)
front=tcp://127.0.0.1:$fport
mkdir -p "$WORK/var/lib/carico" "$WORK/var/log/carico"  # StateDirectory=, LogsDirectory=
for conf in broker worker; do
  sed -e "s|/var/lib/carico|$WORK/var/lib/carico|g; s|/var/log/carico|$WORK/var/log/carico|g" \
      -e "s|tcp://127.0.0.1:5555|$front|; s|tcp://127.0.0.1:5556|tcp://127.0.0.1:$bport|" \
      "$root/etc/carico/$conf.conf" >"$WORK/$conf.conf"
  ! grep -q ':555[56]"' "$WORK/$conf.conf" || fail "$conf.conf: the default ports were not found to move"
done
start broker "$root/usr/bin/carico-broker" --config "$WORK/broker.conf"
start worker "$root/usr/bin/carico-worker" --config "$WORK/worker.conf" --name pkg-w1 \
  --log "$WORK/var/log/carico/worker-pkg-w1.log"
wait_until 10 workers_ready "$front" 1 || fail "the packaged worker did not join the packaged broker"
"$root/usr/bin/carico-client" --connect "$front" send "$CARICO_SOURCE/files/hello.json" >"$WORK/send.out" ||
  fail "the packaged client's send failed"
grep -q '^200 request=1 worker=pkg-w1 .* stored_as=1-Hello.json ' "$WORK/send.out" ||
  fail "no 200 from the packaged programs: $(cat "$WORK/send.out")"
stop worker
stop broker  # flushes its log
# Where the configs say: the journal, the shared storage, the logs.
[ -s "$WORK/var/lib/carico/carico-journal.db" ] || fail "no journal in /var/lib/carico"
[ -f "$WORK/var/lib/carico/storage/1-Hello.json" ] || fail "the document is not in /var/lib/carico/storage"
grep -q "broker listening: clients on $front" "$WORK/var/log/carico/loadbalancer.log" ||
  fail "the broker did not log to /var/log/carico/loadbalancer.log"
grep -q "worker pkg-w1 connecting" "$WORK/var/log/carico/worker-pkg-w1.log" ||
  fail "the worker did not log to /var/log/carico/worker-NAME.log"

# A misspelled key in a config file is an error that names it; nothing starts.
sed 's/^journal-keep = /journal-kep = /' "$root/etc/carico/broker.conf" >"$WORK/typo.conf"
rc=0
timeout 10 "$root/usr/bin/carico-broker" --config "$WORK/typo.conf" --journal none --log "" \
  --frontend "tcp://127.0.0.1:$(free_port)" 2>"$WORK/typo.err" || rc=$?
[ $rc -ne 0 ] || fail "a broker with an unknown config key started"
grep -q "^carico-broker: $WORK/typo.conf: unknown key 'journal-kep'" "$WORK/typo.err" ||
  fail "the unknown key is not named: $(cat "$WORK/typo.err")"

# ---------------------------------------------------------------- the units
# verify: syntax, every key known, the programs executable. systemd-analyze
# checks ExecStart= against this machine, where /usr/bin/carico-* need not be
# installed: the copies verified name the temporary root's programs instead
# (the packaged paths are checked above). Any message, even a warning, fails.
mkdir -p "$WORK/units"
for unit in carico-broker.service carico-worker@.service; do
  sed "s|^ExecStart=/usr/bin/|ExecStart=$root/usr/bin/|" "$root$unitdir/$unit" >"$WORK/units/$unit"
done
cp "$WORK/units/carico-worker@.service" "$WORK/units/carico-worker@w1.service"  # an instance
for unit in carico-broker.service carico-worker@w1.service; do
  if ! systemd-analyze verify "$WORK/units/$unit" >"$WORK/verify.out" 2>&1 || [ -s "$WORK/verify.out" ]; then
    fail "systemd-analyze verify $unit: $(cat "$WORK/verify.out")"
  fi
done
# security: the exposure score (0 best, 10 worst) stays at or below 2.0.
for unit in carico-broker.service carico-worker@.service; do
  systemd-analyze security --offline=yes --threshold=20 --root="$root" "$root$unitdir/$unit" \
    >"$WORK/security.out" 2>&1 || fail "systemd-analyze security $unit: $(tail -n 3 "$WORK/security.out")"
  score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$WORK/security.out")
  echo "$unit: exposure $score"
done

# ---------------------------------------------------------------- cmake --install
DESTDIR=$WORK/stage cmake --install "$CARICO_BIN" --prefix /opt/carico >"$WORK/install.log" 2>&1 ||
  fail "cmake --install failed (see $WORK/install.log)"
for p in "${programs[@]}"; do
  [ -x "$WORK/stage/opt/carico/bin/$p" ] || fail "cmake --install did not install $p"
done
[ -f "$WORK/stage/etc/carico/broker.conf" ] || fail "cmake --install did not install broker.conf"
grep -qx "ExecStart=/opt/carico/bin/carico-broker --config /etc/carico/broker.conf" \
  "$WORK/stage$unitdir/carico-broker.service" || fail "the installed unit does not name the prefix"

echo "PASS: carico_${version} package: metadata, contents, --version, packaged programs and configs, units verified"
