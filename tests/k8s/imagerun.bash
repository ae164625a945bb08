# tests/k8s/imagerun.bash: run images of `make images` from their unpacked root file systems as a container
# runtime would (sourced by test_images.sh inside `unshare --mount --net`): the root file system read-only,
# /tmp and /data on fresh tmpfs, /dev and /proc mounted, uid 10001, only the image's environment (plus the
# caller's VAR=VALUE), the image's entrypoint and command. Needs WORK (where test_images.sh unpacked them).
#   start NAME [VAR=VALUE...] [-- ARG...]   in the background (log: $WORK/NAME.log)
#   run NAME [VAR=VALUE...] [-- ARG...]     in the foreground (ARGs replace the image's command)
#   waitfor SECONDS CMD...                  until CMD succeeds; fails if it never does
#   stop_all                                every process of this network namespace
prepared=" "
prep() {
    local r=$WORK/$1/rootfs
    [[ $prepared == *" $1 "* ]] && return 0
    mkdir -p "$r/dev" "$r/proc" "$r/tmp"
    # the services' names: an address with no route here (a call to them fails at once: nginx answers 502)
    printf '127.0.0.1 localhost mongodb redis mysql rabbitmq\n192.0.2.1 catalogue user cart shipping payment ratings\n' >"$r/etc/hosts"
    mount --bind "$r" "$r" && mount -o remount,bind,ro "$r" || return 1
    mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
    [[ -d $r/data ]] && mount -t tmpfs -o mode=0750,uid=10001,gid=10001 tmpfs "$r/data"
    mount --rbind /dev "$r/dev" && mount -t proc proc "$r/proc" || return 1
    prepared+="$1 "
}
# cmdline NAME [VAR=VALUE...] [-- ARG...]: sets CMD to the env/chroot command line
cmdline() {
    local n=$1 r=$WORK/$1/rootfs
    local -a envs argv args=()
    shift
    mapfile -d '' envs <"$WORK/$n/env"
    mapfile -d '' argv <"$WORK/$n/argv"
    while (($#)); do
        if [[ $1 == -- ]]; then shift; args=("$@"); break; fi
        envs+=("$1"); shift
    done
    if ((${#args[@]})); then # the image's entrypoint with these arguments (as a pod's args:)
        local ep
        ep=$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["config"].get("Entrypoint") or []))' "$WORK/$n/config.json")
        argv=("${argv[@]:0:ep}" "${args[@]}")
    fi
    CMD=(/usr/bin/env -i "${envs[@]}" /usr/sbin/chroot --userspec=10001:10001 "$r" "${argv[@]}")
}
# Standard output and error: the log file, owned by the image's user as runc gives a container's stdio to its
# user (nginx opens /dev/stdout again for its access log).
logto() { : >>"$WORK/$1.log" && chown 10001:10001 "$WORK/$1.log"; }
start() { prep "$1" && logto "$1" || return 1; cmdline "$@"; "${CMD[@]}" >>"$WORK/$1.log" 2>&1 & }
run() { prep "$1" && logto "$1" || return 1; cmdline "$@"; "${CMD[@]}" >>"$WORK/$1.log" 2>&1; }
waitfor() {
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do ((SECONDS < end)) || return 1; sleep 0.5; done
}
stop_all() {
    local me ns p i
    me=$(readlink /proc/self/ns/net)
    for i in 1 2 3; do
        for p in /proc/[0-9]*; do
            p=${p#/proc/}
            [[ $p == "$$" || $p == "$BASHPID" || $p == "$PPID" ]] && continue
            ns=$(readlink "/proc/$p/ns/net" 2>/dev/null) || continue
            [[ $ns == "$me" ]] || continue
            if ((i < 3)); then kill -TERM "$p" 2>/dev/null; else kill -KILL "$p" 2>/dev/null; fi
        done
        sleep 2
    done
}
