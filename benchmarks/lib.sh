# Shared helpers of the benchmark drivers (sourced by gap_real_data.sh, bert_study.sh and multi30k.sh).

log() { echo "[$(date '+%F %T')] $*"; }

# run_once DIR MESSAGE COMMAND...: unless DIR/.done exists, log MESSAGE, run COMMAND with its output
# appended to DIR/train.log, then mark DIR done. A command that fails leaves no marker, so a re-run
# resumes it (fairseq-train continues from DIR's checkpoint_last.pt).
run_once() {
    local dir=$1 message=$2
    shift 2
    [ -f "$dir/.done" ] && return 0
    log "$message"
    mkdir -p "$dir"
    "$@" >> "$dir/train.log" 2>&1
    touch "$dir/.done"
}

# claim DIR: take DIR/.lock for this shell on file descriptor 9 (children inherit it) or fail at once when
# another lane holds it, so that two lanes walking the same list of models each train a different one. The
# lock is the kernel's (flock): it ends with the processes holding it, so a killed lane leaves no stale claim.
claim() {
    mkdir -p "$1"
    exec 9> "$1/.lock"
    flock -n 9 || { exec 9>&-; return 1; }
}
release() { exec 9>&-; }  # end this shell's claim (the one claim it holds)
