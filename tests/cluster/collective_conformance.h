#pragma once
// Backend-independent checks of the Collective contract. Each function is called on every rank of a
// group (threads for Loopback, processes for MPI) and asserts with gtest from that rank.
#include "cluster/collective.h"

namespace sdm::cluster::testing {

void check_allreduce_all_dtypes_and_ops(Collective& c);
void check_bfloat16_accumulates_accurately(Collective& c);
void check_broadcast_from_every_root(Collective& c);
void check_allgather(Collective& c);
void check_barrier_orders_side_effects(Collective& c);
void check_large_buffer(Collective& c);

/// All of the above, in order.
void run_conformance(Collective& c);

}  // namespace sdm::cluster::testing
