#!/usr/bin/env bash
# One allocation of an astroclear field, called by the batch scripts in this folder:
#   astroclear_step.sh FIELD.toml [more `astroclear train` options]
# It runs `srun --mpi=pmix astroclear --config FIELD.toml train --resume auto`, then acts on the
# exit code (README "Exit codes"):
#   0   the field is restored                       -> the job ends COMPLETED
#   75  checkpointed on SIGUSR1/SIGTERM, not done   -> `scontrol requeue` this job (same job id)
#   *   a real error (bad input, refused checkpoint) -> the job ends FAILED, never requeued
# Environment: ASTROCLEAR (the executable; default: astroclear on PATH), ASTROCLEAR_MAX_REQUEUES
# (default 20: a run that checkpoints without finishing that many times is stopped).
set -uo pipefail
field=${1:?usage: astroclear_step.sh FIELD.toml [train options]}
shift
exe=${ASTROCLEAR:-astroclear}
max_requeues=${ASTROCLEAR_MAX_REQUEUES:-20}
restarts=${SLURM_RESTART_COUNT:-0}
job=${SLURM_JOB_ID:?astroclear_step.sh runs inside a Slurm job}
task=${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}

echo "astroclear-slurm: job $job$task, field $field, allocation $((restarts + 1)), ${SLURM_NTASKS:-?} ranks on ${SLURM_JOB_NODELIST:-?}, $(date -u +%FT%TZ)"
[ -r "$field" ] || { echo "astroclear-slurm: field file $field not found (from $(pwd)); not requeued"; exit 1; }
srun --mpi=pmix "$exe" --config "$field" train --resume auto "$@"
code=$?
case $code in
  0)
    echo "astroclear-slurm: field $field restored (exit 0)"
    exit 0 ;;
  75)
    if [ "$restarts" -ge "$max_requeues" ]; then
      echo "astroclear-slurm: checkpointed, but already requeued $restarts times (ASTROCLEAR_MAX_REQUEUES); stopping. Submit again to continue."
      exit 1
    fi
    echo "astroclear-slurm: checkpointed before the time limit; requeueing job $job (requeue $((restarts + 1)) of at most $max_requeues)"
    scontrol requeue "$job" || { echo "astroclear-slurm: scontrol requeue failed; submit the job again to continue"; exit 1; }
    exit 0 ;;
  *)
    echo "astroclear-slurm: astroclear failed with exit code $code; not requeued (the error is above)"
    exit "$code" ;;
esac
