#!/usr/bin/env bash
# The multi-network simulation, end to end: builds the image, makes a song,
# starts the networks, and asserts three scenarios, printing a timing report.
#
#   1. every leecher on net_b and net_c completes with a verified file;
#   2. killing a seeder (the other stays up) and two Chord nodes mid-transfer
#      stops no download;
#   3. cutting net_c off the router: each side keeps finding and serving its
#      local swarm; a playlist is edited on one side; after reconnecting, the
#      ring is one ring again, a lookup from every network returns every live
#      seeder and every network reads the playlist's newest version.
#
# Before the leechers, a search on net_c finds the song seeded on net_a.
#
# Exits non-zero on the first failed assertion, leaving the logs in
# compose/run/<run id>/logs. Everything it starts it removes at exit.
#
# Runs on one Docker host do not collide: each has its own run id (SIM_RUN_ID,
# default PID-RANDOM), hence its own compose project, image tag and data
# directory, and its own /16 of 10.0.0.0/8 (SIM_NET, e.g. 10.77, default: one
# that no Docker network, address or route of the host touches; if another
# run claims the same one first, Docker refuses the overlap and the next free
# one is tried). Cleanup names only this run's project, tag and directory.
# SIM_NETWORKS_ONLY=N claims the networks, holds them N seconds and cleans
# up, without a simulation (to check the above quickly).
#
# Before the leechers, a player on net_c (`songswarm play`, HTTP on its
# loopback) streams the song from seed-a2 on net_a across the router, and
# `songswarm probe` times its first body byte.
#
# Size: `--size small` (the default, CI's: 18 containers) or `--size large`
# (33: five more Chord nodes on each network); SIM_EXTRA_NODES=N sets the
# extra Chord nodes per network by hand.
set -euo pipefail
size=${SIM_SIZE:-small}
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=${2:-}; shift 2 || { echo "--size needs small or large" >&2; exit 2; } ;;
    --size=*) size=${1#--size=}; shift ;;
    *) echo "usage: $0 [--size small|large]" >&2; exit 2 ;;
  esac
done
case $size in
  small) extra=${SIM_EXTRA_NODES:-0} ;;
  large) extra=${SIM_EXTRA_NODES:-5} ;;
  *) echo "--size $size: small or large" >&2; exit 2 ;;
esac
[[ $extra =~ ^[0-9]+$ ]] && [ "$extra" -le 40 ] || { echo "SIM_EXTRA_NODES=$extra: 0 to 40" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
run_id=${SIM_RUN_ID:-$$-$RANDOM}
[[ $run_id =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "SIM_RUN_ID=$run_id: use a-z, 0-9 and -" >&2; exit 2; }
project=songswarm-sim-$run_id
export SIM_IMAGE=songswarm-sim:$run_id
rundir=run/$run_id
export SIM_RUN_DIR=./$rundir
compose=(docker-compose -p "$project" -f docker-compose.yml)
# The extra Chord nodes (SIM_EXTRA_NODES per network): an override file of
# this run's, node-{a,b,c}N at .(100+N), each joining through its network's
# first node.
extra_names=()
if [ "$extra" -gt 0 ]; then
  mkdir -p "$rundir"
  {
    echo 'version: "3.8"'
    echo 'services:'
    for n in a b c; do
      case $n in a) k=1 ;; b) k=2 ;; c) k=3 ;; esac
      for i in $(seq 3 $((extra + 2))); do
        extra_names+=("node-$n$i")
        cat <<YAML
  node-$n$i:
    image: "\${SIM_IMAGE}"
    cap_add: [NET_ADMIN]
    environment: { RUST_LOG: "songswarm=info" }
    command: ["node", "--listen", "\${SIM_NET}.$k.$((100 + i)):6881", "--bootstrap", "\${SIM_NET}.$k.11:6881", "--bootstrap", "\${SIM_NET}.1.11:6881"]
    depends_on: [router]
    networks:
      net_$n: { ipv4_address: "\${SIM_NET}.$k.$((100 + i))" }
YAML
      done
    done
  } > "$rundir/extra-nodes.yml"
  compose+=(-f "$rundir/extra-nodes.yml")
fi
# Ring sizes: 6 nodes + 2 seeders, and the extra nodes.
ring_all=$((8 + 3 * extra))
song_mb=${SIM_SONG_MB:-12}
t0=$(date +%s)
declare -a report=()

say() { printf '[%4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
fail() {
  say "FAILED: $*"
  mkdir -p "$rundir/logs"
  for c in $(docker ps -a --format '{{.Names}}' | grep "^${project}_"); do
    docker logs "$c" > "$rundir/logs/${c#"${project}_"}.log" 2>&1 || true
  done
  say "logs in compose/$rundir/logs"
  keep_logs=1
  exit 1
}
keep_logs=0
# Only this run's containers, networks, image tag and files. The data and
# downloads go either way; the logs stay after a failure.
cleanup() {
  "${compose[@]}" --profile leechers --profile partition --profile player down -v --remove-orphans >/dev/null 2>&1 || true
  docker image rm "$SIM_IMAGE" >/dev/null 2>&1 || true
  rm -rf "$rundir/share" "$rundir/out"
  [ "$keep_logs" = 1 ] || rm -rf "$rundir"
  rmdir run 2>/dev/null || true
}
trap cleanup EXIT

# The second octets already used in 10.0.0.0/8 on this host: by Docker's
# networks (any project's) and by the host's own addresses and routes.
used_10_octets() {
  {
    docker network ls -q | xargs -r docker network inspect \
      -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' 2>/dev/null || true
    ip -4 -o addr show 2>/dev/null || true
    ip -4 route show 2>/dev/null || true
  } | { grep -o '\b10\.[0-9]\{1,3\}\.' || true; } | cut -d. -f2 | sort -un
}

# Creates this run's networks (and the router's container, not started) in a
# free /16, trying SIM_NET if set, else candidates 10.64 .. 10.191 starting
# at one picked by the run id. Sets and exports SIM_NET.
claim_networks() {
  local tries=() used second i net out
  if [ -n "${SIM_NET:-}" ]; then
    tries=("$SIM_NET")
  else
    used=" $(used_10_octets | tr '\n' ' ') "
    second=$(( 64 + $(cksum <<<"$run_id" | cut -d' ' -f1) % 128 ))
    for i in $(seq 0 127); do
      local o=$(( 64 + (second - 64 + i) % 128 ))
      [[ $used == *" $o "* ]] || tries+=("10.$o")
    done
  fi
  for net in "${tries[@]}"; do
    export SIM_NET=$net
    if out=$("${compose[@]}" up --no-start router 2>&1); then
      say "project $project, networks $net.1.0/24, $net.2.0/24, $net.3.0/24"
      return 0
    fi
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    # Docker refuses a subnet that overlaps another network's, so a run that
    # took this one a moment ago makes this fail: try the next. Any other
    # error is not about the choice of subnet.
    grep -qi overlap <<<"$out" || fail "cannot create the networks in $net: $out"
    say "$net.0.0/16 is taken: $(tail -1 <<<"$out")"
  done
  fail "no free /16 for the networks (tried ${tries[*]:-none}; set SIM_NET)"
}

# Runs `songswarm ARGS` inside the container $1 (which must be running).
sw() { local c=$1; shift; "${compose[@]}" exec -T "$c" /bin/songswarm "$@"; }

# Waits until the command succeeds, or fails after $1 seconds with message $2.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${limit}s waiting for: $what"
    sleep 1
  done
}

# field NAME JSON: the number under "NAME" in a one-line JSON object.
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" <<<"$2"; }

mark() { report+=("$(printf '%-58s %5ss' "$1" "$(( $(date +%s) - t0 ))")"); }

# --- build --------------------------------------------------------------
say "run $run_id: building the image $SIM_IMAGE"
./build.sh "$SIM_IMAGE"
bin=${CARGO_TARGET_DIR:-$(dirname "$here")/target}/x86_64-unknown-linux-gnu/release/songswarm
claim_networks
if [ -n "${SIM_NETWORKS_ONLY:-}" ]; then
  docker network ls -q --filter "label=com.docker.compose.project=$project" \
    | xargs -r docker network inspect -f '{{.Name}} {{range .IPAM.Config}}{{.Subnet}}{{end}}'
  say "SIM_NETWORKS_ONLY: holding them ${SIM_NETWORKS_ONLY} s, then cleaning up"
  sleep "$SIM_NETWORKS_ONLY"
  exit 0
fi
mkdir -p "$rundir/share/data" "$rundir/logs"
head -c $((song_mb * 1024 * 1024)) /dev/urandom > "$rundir/share/data/sim-song.flac"
hash=$("$bin" create "$rundir/share/data/sim-song.flac" -o "$rundir/share/song.torrent" \
  --title "Simulated Song" --json | sed -n 's/.*"info_hash":"\([0-9a-f]\{40\}\)".*/\1/p')
[ -n "$hash" ] || fail "create printed no info-hash"
# The playlist owner's identity, made here and copied into whichever
# container edits (the share is read-only there).
"$bin" id --config-dir "$rundir/share/owner" >/dev/null
for l in b1 b2 b3 b4 c1 c2 c3 c4; do mkdir -p "$rundir/out/leech-$l"; done
mkdir -p "$rundir/out/player-c"
mark "image built, ${song_mb} MB song made"

# --- ring and seeders ---------------------------------------------------
say "starting router, $((6 + 3 * extra)) Chord nodes ($((2 + extra)) per network), 2 seeders on net_a"
"${compose[@]}" up -d router node-a1 node-a2 node-b1 node-b2 node-c1 node-c2 seed-a1 seed-a2 \
  "${extra_names[@]}" >/dev/null

ring_size() { sw "$1" dht walk --node "$2" --json | sed -n 's/.*"size":\([0-9]*\).*/\1/p'; }
ring_is() { [ "$(ring_size "$1" "$2")" = "$3" ]; }
peers_of() { sw "$1" dht peers "$hash" --node "$2" --json; }
has_peers() { local out; out=$(peers_of "$1" "$2"); shift 2; for p in "$@"; do grep -q "\"$p\"" <<<"$out" || return 1; done; }

ring_wait=$((60 + 6 * extra))
wait_for "$ring_wait" "a ring of $ring_all ($((6 + 3 * extra)) nodes + 2 seeders)" ring_is node-a1 "$SIM_NET.1.11:6881" "$ring_all"
mark "ring of $ring_all formed"
wait_for 60 "both seeders in the swarm list" has_peers node-b1 "$SIM_NET.2.11:6881" "$SIM_NET.1.21:6881" "$SIM_NET.1.22:6881"
mark "both seeders announced and found from net_b"

# --- the catalog across networks ---------------------------------------
# The seeders on net_a publish the song's words; net_c searches for them.
finds_song() { sw node-c1 search simulated song --node "$SIM_NET.3.11:6881" --json | grep -q "\"$hash\""; }
wait_for 60 "a search on net_c to find the song seeded on net_a" finds_song
mark "a search on net_c found the song published on net_a"

# A playlist of the owner's, made from net_c before the cut (below).
as_owner() { "${compose[@]}" exec -T "$1" /bin/sh -c 'test -d /owner || cp -r /share/owner /owner'; }
playlist() { local c=$1 node=$2; shift 2; sw "$c" playlist "$@" --node "$node" --config-dir /owner --json; }
as_owner node-c1
pl=$(playlist node-c1 "$SIM_NET.3.11:6881" create mix "$hash" | sed -n 's/.*"playlist":"\([0-9a-f]*\/mix\)".*/\1/p')
[ -n "$pl" ] || fail "playlist create on net_c printed no playlist"
mark "a playlist made on net_c"

# --- a player across the router ----------------------------------------
say "playing the song on net_c from seed-a2 on net_a, over HTTP"
# The probe (a client on node-c1) asks before the player exists, so its
# GET goes out as soon as the song's URL answers, as the player's own
# download starts: the first byte is the first piece's trip across the router.
(docker exec "${project}_node-c1_1" /bin/songswarm probe \
  "http://$SIM_NET.3.41:8080/songs/$hash" --wait 90 --json > "$rundir/probe.json" 2>&1
 echo $? > "$rundir/probe.rc") &
probing() { docker top "${project}_node-c1_1" | grep -q "songswarm probe"; }
wait_for 20 "the probe to start" probing
"${compose[@]}" --profile player up -d player-c >/dev/null
wait
probe=$(cat "$rundir/probe.json")
[ "$(cat "$rundir/probe.rc")" = 0 ] || fail "the player never served the song: $probe"
ttfb=$(field first_byte_ms "$probe")
[ "$(field bytes "$probe")" -gt 0 ] || fail "the player served no bytes: $probe"
report+=("$(printf '  player-c   first byte over HTTP %.1f ms after the GET (sent when the URL first answered, %.0f ms after the probe began)' "$ttfb" "$(field waited_ms "$probe")")")
docker kill "${project}_player-c_1" >/dev/null
mark "a player on net_c played the song from net_a over HTTP"

# --- scenario 1 and 2: leechers, with a seeder and 2 nodes killed -------
say "starting 6 leechers (3 on net_b, 3 on net_c)"
"${compose[@]}" --profile leechers up -d leech-b1 leech-b2 leech-b3 leech-c1 leech-c2 leech-c3 >/dev/null
leech_start=$(date +%s)

# (docker logs, not docker-compose logs: the latter ignores services whose
# profile is not named.)
done_line() { docker logs "${project}_$1_1" 2>/dev/null | grep -o '{.*"event":"done".*}' | head -1; }
is_done() { [ -n "$(done_line "$1")" ]; }
any_done() { for l in "$@"; do is_done "$l" && return 0; done; return 1; }

# Mid-transfer: some bytes have moved to net_c, nobody is finished yet.
has_bytes() { [ -n "$(find "$rundir/out/$1" -type f -size +0 2>/dev/null)" ]; }
wait_for 60 "the first bytes on net_c" has_bytes leech-c1
if any_done leech-b1 leech-b2 leech-b3 leech-c1 leech-c2 leech-c3; then
  fail "a leecher finished before the kills: raise SIM_SONG_MB"
fi
say "killing seed-a1, node-a2 and node-b2 mid-transfer"
docker kill "${project}_seed-a1_1" "${project}_node-a2_1" "${project}_node-b2_1" >/dev/null
mark "killed a seeder and 2 Chord nodes mid-transfer"

for l in leech-b1 leech-b2 leech-b3 leech-c1 leech-c2 leech-c3; do
  wait_for 180 "$l to complete" is_done "$l"
  cmp -s "$rundir/share/data/sim-song.flac" "$rundir/out/$l/sim-song.flac" || fail "$l's file differs from the original"
  line=$(done_line "$l")
  report+=("$(printf '  %-10s done in %6.2f s at %5.2f MB/s, %s peers, uploaded %5.2f MB' "$l" \
    "$(field seconds "$line")" "$(awk "BEGIN{print $(field rate_bytes_per_sec "$line")/1e6}")" \
    "$(field peers "$line")" "$(awk "BEGIN{print $(field uploaded_bytes "$line")/1e6}")")")
done
mark "all 6 leechers complete and byte-identical"

# --- scenario 3: partition ----------------------------------------------
say "cutting net_c off the router"
docker network disconnect "${project}_net_c" "${project}_router_1"
mark "net_c cut off"
# Each side heals into its own ring: net_c has node-c1, node-c2 and its
# three (now seeding) leechers; the other side has the rest.
wait_for $((90 + 3 * extra)) "net_c's own ring of $((5 + extra))" ring_is node-c1 "$SIM_NET.3.11:6881" $((5 + extra))
wait_for $((90 + 3 * extra)) "the other side's ring of $((6 + 2 * extra))" ring_is node-b1 "$SIM_NET.2.11:6881" $((6 + 2 * extra))
mark "each side is its own ring"
# Edit the playlist on one side of the cut: on net_c if its ring holds the
# playlist, else on the other side (its three replicas may all be there).
edited_on=
for side in "node-c1 $SIM_NET.3.11:6881" "node-b1 $SIM_NET.2.11:6881"; do
  set -- $side
  as_owner "$1"
  if out=$(playlist "$1" "$2" add mix "$hash" 2>&1); then edited_on=$1; break; fi
  say "editing the playlist from $1 during the cut: $out"
done
[ -n "$edited_on" ] || fail "neither side of the cut could edit the playlist"
version=$(field version "$out")
[ "${version:-0}" -ge 2 ] || fail "the edit on $edited_on made no new version: $out"
mark "the playlist edited on $edited_on during the cut (version $version)"
say "one new leecher on each side, fed by its local swarm"
"${compose[@]}" --profile partition up -d leech-b4 leech-c4 >/dev/null
wait_for 120 "leech-c4 (net_c, cut off) to complete" is_done leech-c4
wait_for 120 "leech-b4 (net_b) to complete" is_done leech-b4
for l in leech-b4 leech-c4; do
  cmp -s "$rundir/share/data/sim-song.flac" "$rundir/out/$l/sim-song.flac" || fail "$l's file differs"
done
mark "both sides served their local swarm"

say "reconnecting net_c"
docker network connect --ip "$SIM_NET.3.254" "${project}_net_c" "${project}_router_1"
# Live: 4 nodes (a1, b1, c1, c2), 1 seeder, 8 leechers seeding after = 13,
# and the extra nodes.
healed=$((13 + 3 * extra))
wait_for $((180 + 6 * extra)) "one ring of $healed again" ring_is node-c1 "$SIM_NET.3.11:6881" "$healed"
mark "the ring is one ring again ($healed members)"
live_seeders=("$SIM_NET.1.22:6881" "$SIM_NET.2.31:6881" "$SIM_NET.2.32:6881" "$SIM_NET.2.33:6881" "$SIM_NET.3.31:6881" "$SIM_NET.3.32:6881" "$SIM_NET.3.33:6881")
for n in "node-a1 $SIM_NET.1.11:6881" "node-b1 $SIM_NET.2.11:6881" "node-c1 $SIM_NET.3.11:6881"; do
  # shellcheck disable=SC2086
  wait_for 120 "every live seeder from $n" has_peers $n "${live_seeders[@]}"
done
mark "every network's lookup returns every live seeder"
reads_version() { [ "$(field version "$(sw "$1" playlist show "$pl" --node "$2" --config-dir /reader --json)")" = "$version" ]; }
for n in "node-a1 $SIM_NET.1.11:6881" "node-b1 $SIM_NET.2.11:6881" "node-c1 $SIM_NET.3.11:6881"; do
  # shellcheck disable=SC2086
  wait_for 120 "the playlist's version $version from $n" reads_version $n
done
mark "every network reads the playlist's newest version"

say "all scenarios passed"
echo
containers=$(docker ps -a --format '{{.Names}}' | grep -c "^${project}_" || true)
echo "size $size: $containers containers on 3 networks, $((6 + 3 * extra)) Chord nodes"
echo "timing report (seconds since start)"
printf '%s\n' "${report[@]}"
