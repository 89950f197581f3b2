# Sourced by the scripts that start mpirun on one machine (tools/test.sh, tools/test-sanitized.sh, tools/bench/):
# the launch environment in one place.
# mpirun refuses root without these, and more ranks than cores need oversubscription (CONTRACTS §1).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Where munge is installed (Slurm brings it) but munged is not running, PMIx's munge security plugin retries its
# connection with a growing back-off on every launch: 2.25 s before each mpirun starts a rank (measured: 2.6 s
# -> 0.37 s for an MPI_Init/Finalize pair at 2 ranks). Ranks of one mpirun on one machine need no munge
# credentials; PMIx's native security (the socket peer's uid) is what it uses where munge is absent. A value
# set by the caller wins.
export PMIX_MCA_psec=${PMIX_MCA_psec:-^munge}
