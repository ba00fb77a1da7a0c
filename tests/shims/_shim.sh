# Shared by the stand-ins in this directory (sourced, not run). The SSH test hosts have no
# systemd and no Docker engine: these shims do what the real tools would to the sample app,
# through its ./run.sh in the current directory (every command runs `cd WORKDIR && ...`), and
# append each call to ./.shim-calls so tests can assert what really ran.

# record NAME ARGS...: one line per call, arguments with spaces or quotes single-quoted.
record() {
    line=$1
    shift
    for arg in "$@"; do
        case $arg in
            '' | *[!A-Za-z0-9_./:=@+,-]*)
                arg="'$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")'" ;;
        esac
        line="$line $arg"
    done
    printf '%s\n' "$line" >> .shim-calls
}

# refuse NAME ARGS...: a call this stand-in does not know; a wrong template fails loudly.
refuse() {
    name=$1
    shift
    echo "$name (rewind test shim): unsupported arguments: $*" >&2
    exit 2
}

# valid_unit NAME: a unit / project name, not an option.
valid_unit() {
    case $1 in
        '' | -* | *[!A-Za-z0-9_.@:-]*) return 1 ;;
    esac
    return 0
}

# log_since SINCE_LOCAL N: app.log lines written at or after SINCE_LOCAL
# ("YYYY-MM-DD HH:MM:SS[.frac]", host-local, as the sample app's timestamps), last N if N > 0.
# A line without a timestamp belongs to the record above it.
log_since() {
    [ -f app.log ] || return 0
    awk -v since="$1" '
        function norm(s,   frac) {
            # "YYYY-MM-DD HH:MM:SS[.,]fff" -> "YYYY-MM-DD HH:MM:SS.fffffffff"
            frac = substr(s, 21)
            while (length(frac) < 9) frac = frac "0"
            return substr(s, 1, 10) " " substr(s, 12, 8) "." frac
        }
        BEGIN { keep = 1; since = norm(since) }
        {
            if (match($0, /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]:[0-9][0-9]([.,][0-9]+)?/))
                keep = norm(substr($0, 1, RLENGTH)) >= since
            if (keep) print
        }
    ' app.log | if [ "${2:-0}" -gt 0 ]; then tail -n "$2"; else cat; fi
}
