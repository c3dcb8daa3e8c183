#!/usr/bin/env bash
# ranks.sh N COMMAND ARGS...: COMMAND on N MPI ranks, started the way CMake's FindMPI says this MPI
# starts them (tests/CMakeLists.txt exports MPIEXEC, MPIEXEC_NUMPROC_FLAG and MPIEXEC_PREFLAGS).
n=$1
shift
# shellcheck disable=SC2086  # MPIEXEC_PREFLAGS is a space-separated list of flags
exec "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" ${MPIEXEC_PREFLAGS:-} "$@"
