# Shared helpers of the benchmark drivers (sourced by gap_real_data.sh and bert_study.sh).

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
