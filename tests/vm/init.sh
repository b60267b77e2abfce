#!/bin/busybox sh
# PID 1 of the cgroup v2 test VM (tests/vm/mod.rs builds the initramfs,
# tests/cgroup_v2_kernel.rs reads the serial console). Every scenario
# prints sections between "=== BEGIN name" and "=== END name": the
# kernel's files ("--- file" then its text) and vitals' exposition, read
# while the workload's cgroup is frozen where the figures move.
FILES="cgroup.procs io.max cpu.max cpu.stat memory.current memory.max memory.high
memory.events memory.stat pids.current pids.max pids.events cpu.pressure
memory.pressure io.pressure"

# dump NAME DIR: the kernel's files of the cgroup DIR.
dump() {
    echo "=== BEGIN $1"
    echo "--- uptime"
    cut -d' ' -f1 /proc/uptime
    for f in $FILES; do
        [ -e "$2/$f" ] && { echo "--- $f"; cat "$2/$f"; }
    done
    echo "=== END $1"
}

# once NAME TARGET [EXTRA]: `vitals once` with the cgroup source alone on
# TARGET (a YAML flow value); EXTRA is more YAML at the top level. $AS is
# a prefix that runs it as another user. HELP and TYPE lines are left out.
once() {
    printf 'default_checks: false\nsources:\n  host: {enabled: false}\n  cgroup: {enabled: true, target: %s}\n%s\n' \
        "$2" "$3" > /tmp/$1.yaml
    echo "=== BEGIN $1"
    echo "uptime $(cut -d' ' -f1 /proc/uptime)"
    $AS vitals once --config /tmp/$1.yaml 2>/tmp/$1.err > /tmp/$1.out
    echo "exit $?"
    grep -v '^#' /tmp/$1.out
    echo "=== END $1"
    echo "=== BEGIN $1.stderr"
    cat /tmp/$1.err
    echo "=== END $1.stderr"
}

# freeze DIR / thaw DIR: cgroup.freeze, waiting for cgroup.events to say
# the whole subtree is frozen and for its CPU figures to stop.
freeze() {
    echo 1 > $1/cgroup.freeze
    n=0
    until grep -q '^frozen 1' $1/cgroup.events; do
        n=$((n + 1))
        [ $n -gt 100 ] && { echo "=== NOT FROZEN $1"; return 1; }
        sleep 0.1
    done
    # A frozen cgroup that was throttled keeps its CFS bandwidth timer for
    # a period or two (nr_periods still counts, Linux 6.1): wait until
    # cpu.stat stands still.
    n=0
    while [ "$(cat $1/cpu.stat)" != "$(sleep 0.3; cat $1/cpu.stat)" ]; do
        n=$((n + 1))
        [ $n -gt 30 ] && { echo "=== NOT SETTLED $1"; return 1; }
    done
    # memory.current counts the charge batch (up to 64 pages) kept in the
    # CPU's stock for the cgroup; the next charge of another cgroup on that
    # CPU hands it back. A process in a cgroup of its own drains it now,
    # not while vitals reads.
    sh -c 'echo $$ > /sys/fs/cgroup/drain/cgroup.procs; exec cat /proc/uptime' > /dev/null
}
thaw() { echo 0 > $1/cgroup.freeze; }

# start DIR CMD...: CMD in the cgroup DIR, in the background, its output
# in /tmp/ready. Sets PID.
start() {
    dir=$1; shift
    rm -f /tmp/ready
    sh -c 'echo $$ > "$0/cgroup.procs"; exec "$@"' "$dir" "$@" > /tmp/ready &
    PID=$!
}

# ready FILE...: waits (up to 30 s) for each hog's "ready" (its memory
# touched) in FILE.
ready() {
    for f in "$@"; do
        n=0
        until grep -q ready $f 2>/dev/null; do
            n=$((n + 1))
            [ $n -gt 300 ] && { echo "=== NOT READY $f"; break; }
            sleep 0.1
        done
    done
}

scenario_limits() {
    # 64M and 0.2 core, 24 MiB held and a spinning CPU: throttled.
    W=$CG/work
    mkdir $W
    echo 64M > $W/memory.max
    echo "20000 100000" > $W/cpu.max
    echo 32 > $W/pids.max
    start $W helper hog 24 spin
    ready /tmp/ready
    echo "=== PID work $PID"
    echo "=== BEGIN work.proc"
    echo "--- cgroup"
    cat /proc/$PID/cgroup
    echo "--- mountinfo"
    cat /proc/self/mountinfo
    echo "=== END work.proc"
    sleep 2
    freeze $W
    dump work.before $W
    once work.path "{path: $W}"
    once work.pid "{pid: $PID}"
    once work.process '{process: "hog 24 spin"}'
    dump work.after $W
    thaw $W
    kill -9 $PID
}

scenario_oom() {
    # A sleeper and a 32 MiB hog in 16M: the hog is OOM-killed.
    O=$CG/oom
    mkdir $O
    echo 16M > $O/memory.max
    start $O sleep 1000
    SLEEPER=$PID
    start $O helper hog 32
    wait $PID
    echo "=== OOM hog exit $?"
    dump oom.files $O
    once oom.path "{path: $O}"
    once oom.pid "{pid: $SLEEPER}"
    kill -9 $SLEEPER
}

scenario_pressure() {
    # 12 MiB against memory.high 8M, no swap: the kernel throttles the
    # allocations (memory.events high) and counts the stall as memory
    # pressure. pids.max 3: the hog, a sleeper and a process whose fork is
    # refused.
    P=$CG/pressure
    mkdir $P
    echo 8M > $P/memory.high
    echo 3 > $P/pids.max
    sh -c 'echo $$ > "$0/cgroup.procs"; exec helper hog 12' $P > /dev/null &
    sleep 3
    start $P sleep 1000
    start $P helper fork
    n=0
    until grep -q fork /tmp/ready; do
        n=$((n + 1)); [ $n -gt 100 ] && break; sleep 0.1
    done
    echo "=== FORK $(cat /tmp/ready)"
    freeze $P
    dump pressure.before $P
    once pressure.path "{path: $P}"
    dump pressure.after $P
    thaw $P
    for p in $(cat $P/cgroup.procs); do kill -9 $p; done
}

# get NAME PATH: GET PATH from the daemon: the status line and headers
# (wget -S), then the body when the status is 2xx.
get() {
    echo "=== BEGIN $1"
    wget -S -O - "http://127.0.0.1:8482$2" 2>&1 | grep -v '^#'
    echo "=== END $1"
}

scenario_rounds() {
    # The daemon, a round every 2 s, on a cgroup of 0.05 core and 32M with a
    # spinner holding 26 MiB: CPU and throttling past their critical
    # levels, memory past its warning. The defaults' levels, without their
    # `for` (a minute or two) so that the states show in seconds; the CPU
    # checks gate readiness. Then 10 MiB more: the OOM killer takes the
    # spinner, the CPU figures fall and readiness comes back.
    R=$CG/rounds
    mkdir $R
    echo 32M > $R/memory.max
    echo "5000 100000" > $R/cpu.max
    start $R helper hog 26 spin
    ready /tmp/ready
    cat > /tmp/rounds.yaml <<EOF
listen: 127.0.0.1:8482
interval: 2s
sources:
  host: {enabled: false}
  cgroup: {enabled: true, target: {path: $R}}
# A check named like a built-in one takes the built-in for and
# clear_for unless it gives its own: here 0s, so the states follow the
# VM's few rounds.
checks:
  - {name: container_cpu, metric: vitals_cgroup_cpu_limit_utilization_ratio, direction: above, warning: 0.7, critical: 0.9, hysteresis: 0.05, for: 0s, clear_for: 0s, readiness: true}
  - {name: container_memory, metric: vitals_cgroup_memory_limit_utilization_ratio, direction: above, warning: 0.8, critical: 0.95, hysteresis: 0.02, for: 0s, clear_for: 0s}
  - {name: container_cpu_throttling, metric: vitals_cgroup_cpu_throttled_ratio, direction: above, warning: 0.25, critical: 0.5, hysteresis: 0.05, for: 0s, clear_for: 0s, readiness: true}
  - {name: container_oom, metric: vitals_cgroup_memory_oom_kills_total, direction: above, critical: 0, for: 0s, clear_for: 0s}
EOF
    vitals --config /tmp/rounds.yaml 2>/tmp/rounds.err &
    DAEMON=$!
    sleep 5
    dump rounds.k1 $R
    get rounds.m1 /metrics
    sleep 4
    dump rounds.k2 $R
    get rounds.m2 /metrics
    get rounds.ready1 /health/ready
    start $R helper hog 10
    ready /tmp/ready
    echo "=== ROUNDS procs $(grep -c . $R/cgroup.procs)"
    sleep 5
    get rounds.m3 /metrics
    get rounds.ready2 /health/ready
    kill $DAEMON
    wait $DAEMON
    echo "=== BEGIN rounds.stderr"
    cat /tmp/rounds.err
    echo "=== END rounds.stderr"
    for p in $(cat $R/cgroup.procs); do kill -9 $p; done
}

scenario_io() {
    # 3 MiB written with O_DIRECT to the RAM disk, throttled to 1 MiB/s by
    # io.max: the writer waits on its I/O, which PSI counts as io pressure.
    I=$CG/io
    mkdir $I
    echo "$(cat /sys/block/ram0/dev) wbps=1048576" > $I/io.max
    start $I dd if=/dev/zero of=/dev/ram0 bs=64k count=48 oflag=direct
    wait $PID
    echo "=== IO dd exit $?"
    dump io.files $I
    once io.path "{path: $I}"
}

# pod TAG POD APP APP2 SIDECAR PAUSE [short]: a pod as a cgroup v2 node's
# kubelet and containerd make it. POD (96M, 0.5 core) holds the containers' cgroups:
# APP (64M, 0.2 core; 24 MiB and spinning), APP2 (no limit of its own,
# 8 MiB), SIDECAR and PAUSE. One PID namespace whose PID 1 is pause
# (shareProcessNamespace); every container in its own cgroup and mount
# namespace with cgroup2 mounted at /sys/fs/cgroup. The apps and vitals in
# the sidecar run as uid 1000 without capabilities, as deploy/kubernetes
# does.
pod() {
    tag=$1 P=$2
    d=$CG
    for part in $(echo ${P#$CG/} | tr / ' '); do
        d=$d/$part
        mkdir -p $d
        echo "+cpu +memory +pids" > $d/cgroup.subtree_control
    done
    for c in $3 $4 $5 $6; do mkdir $P/$c; done
    echo 96M > $P/memory.max
    echo "50000 100000" > $P/cpu.max
    echo 64M > $P/$3/memory.max
    echo "20000 100000" > $P/$3/cpu.max
    sh -c 'echo $$ > "$0/cgroup.procs"; exec unshare -p -f pause' $P/$6 &
    PAUSE=
    while [ -z "$PAUSE" ]; do sleep 0.1; PAUSE=$(pidof pause); done
    nsenter -t $PAUSE -p helper container $P/$3 -- helper as 1000 helper hog 24 spin > /tmp/ready &
    nsenter -t $PAUSE -p helper container $P/$4 -- helper as 1000 helper hog 8 > /tmp/ready2 &
    ready /tmp/ready /tmp/ready2
    sleep 2
    freeze $P/$3
    freeze $P/$4
    dump $tag.app.before $P/$3
    dump $tag.app2.before $P/$4
    dump $tag.pod $P
    nsenter -t $PAUSE -p helper container $P/$5 --host-cgroup /host/sys/fs/cgroup -- \
        sh /init --sidecar $tag $7
    dump $tag.app.after $P/$3
    dump $tag.app2.after $P/$4
    thaw $P/$3
    thaw $P/$4
    kill -9 $PAUSE
    rm -f /tmp/ready /tmp/ready2
}

# Inside the sidecar container: vitals as uid 1000 on the app, by pid, by
# process (and as another uid, refused), every container, and through the
# node's tree (a hostPath); with "short" the last two only (the second pod,
# to keep the VM's time down).
sidecar() {
    tag=$1
    for d in /proc/[0-9]*; do
        case "$(tr '\0' ' ' < $d/cmdline)" in
            "helper hog 24 spin "*) APP=${d#/proc/} ;;
        esac
    done
    echo "=== PID $tag.app $APP"
    AS="helper as 1000"
    if [ "$2" != short ]; then
        once $tag.pid "{pid: $APP}"
        once $tag.process '{process: "hog 24 spin"}'
        # Another uid, no CAP_SYS_PTRACE: the app's mounts are closed.
        AS="helper as 2000" once $tag.otheruid "{pid: $APP}"
    fi
    once $tag.auto '{container: auto}'
    once $tag.host "{container: auto}" "paths: {cgroup: /host/sys/fs/cgroup}"
}

if [ "$1" = --sidecar ]; then
    sidecar "$2" "$3"
    exit
fi

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
CG=/sys/fs/cgroup
echo "+cpu +memory +pids +io" > $CG/cgroup.subtree_control
mkdir $CG/drain
# One 16 MiB RAM disk, /dev/ram0, for the io scenario.
insmod /lib/modules/brd.ko rd_nr=1 rd_size=16384

UID_=0b5e1c6a-7f0e-4c1e-9a51-3f2d8c1e4b70
scenario_pod_cgroupfs() {
    pod cgroupfs $CG/kubepods/burstable/pod$UID_ \
        8f3c2a1b9d4e 5a6b7c8d9e0f 1d2e3f4a5b6c 0a1b2c3d4e5f short
}
scenario_pod_systemd() {
    S=$(echo $UID_ | tr - _)
    pod systemd $CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod$S.slice \
        cri-containerd-8f3c2a1b9d4e.scope cri-containerd-5a6b7c8d9e0f.scope \
        cri-containerd-1d2e3f4a5b6c.scope cri-containerd-0a1b2c3d4e5f.scope
}

for s in limits oom pressure io rounds pod_systemd pod_cgroupfs; do
    echo "=== SCENARIO $s $(cut -d' ' -f1 /proc/uptime)"
    scenario_$s
done
echo "=== UPTIME $(cut -d' ' -f1 /proc/uptime)"
echo "=== DONE"
poweroff -f
