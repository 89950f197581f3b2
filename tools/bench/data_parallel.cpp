// Data-parallel benchmarks (issue 6), run under mpirun (see data_parallel.sh):
//   allreduce  bucketed gradient all-reduce of a scGPT-sized parameter set (the whole-human model's real tensor
//              shapes) vs one raw MPI_Allreduce of the same bytes: bandwidth of each and the ratio (goal >= 0.8).
//   lora-step  LoRA fine-tuning step time at the group size this run has, for a fixed global batch: run it at
//              -np 1 and -np 2 and compare; with WEIGHTS (safetensors) the base model's weights come from that file
//              (lora_step_reference.py writes one and times the same step in PyTorch).
#include <mpi.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cluster/mpi.h"
#include "cluster/mpi_collective.h"
#include "cluster/tensor_collective.h"
#include "jobs/models.h"
#include "worker/finetune.h"
#include "worker/models/encoder.h"
#include "worker/runtime.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace sdm;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int bench_allreduce(int rounds, std::size_t bucket_bytes) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // The whole-human scGPT's parameters (random values; only shapes and count matter here).
  const auto& info = jobs::model_info("scgpt", "model");
  auto encoder = worker::make_encoder("scgpt", info.preset("default", "preset").config, {});
  std::vector<torch::Tensor> like;
  std::size_t bytes = 0;
  for (const auto& [name, t] : encoder->params().items()) {
    like.push_back(t);
    bytes += static_cast<std::size_t>(t.nbytes());
  }
  cluster::GradientBuckets grads(like, bucket_bytes);
  for (auto& v : grads.views()) v.uniform_();
  auto flat = torch::rand({static_cast<std::int64_t>(bytes / 4)});
  cluster::MpiCollective collective(MPI_COMM_WORLD);
  std::vector<double> raw_s, bucket_s;
  std::size_t buckets = 0;
  for (int r = 0; r < rounds + 1; ++r) {  // round 0 warms up both paths
    MPI_Barrier(MPI_COMM_WORLD);
    auto t0 = Clock::now();
    cluster::check_mpi(MPI_Allreduce(MPI_IN_PLACE, flat.data_ptr<float>(), static_cast<int>(flat.numel()), MPI_FLOAT, MPI_SUM,
                                     MPI_COMM_WORLD),
                       "MPI_Allreduce");
    const double raw = std::chrono::duration<double>(Clock::now() - t0).count();
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = Clock::now();
    buckets = grads.allreduce(collective, cluster::ReduceOp::kSum).buckets;
    const double bucketed = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r > 0) {
      raw_s.push_back(raw);
      bucket_s.push_back(bucketed);
    }
  }
  if (rank == 0) {
    const double mb = static_cast<double>(bytes) / 1e6;
    const double raw_bw = mb / median(raw_s), bucket_bw = mb / median(bucket_s);
    std::printf("allreduce ranks=%d params=%lld tensors=%zu bytes=%.1fMB buckets=%zu bucket_mb=%.0f rounds=%d\n", size,
                static_cast<long long>(bytes / 4), like.size(), mb, buckets, static_cast<double>(bucket_bytes) / 1e6, rounds);
    std::printf("raw MPI_Allreduce:  median %.4f s (min %.4f)  %.0f MB/s\n", median(raw_s),
                *std::min_element(raw_s.begin(), raw_s.end()), raw_bw);
    std::printf("bucketed all-reduce: median %.4f s (min %.4f)  %.0f MB/s\n", median(bucket_s),
                *std::min_element(bucket_s.begin(), bucket_s.end()), bucket_bw);
    std::printf("ratio bucketed/raw bandwidth = %.2f (goal >= 0.8)\n", bucket_bw / raw_bw);
  }
  return 0;
}

int bench_lora_step(const std::string& model, const std::string& preset, int batch, int steps, int length,
                    const std::string& weights) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const auto& info = jobs::model_info(model, "model");
  const auto config = info.preset(preset, "preset").config;
  // WEIGHTS (a safetensors file in published names, e.g. from lora_step_reference.py) or random from init_seed
  auto loaded = worker::LoadedModel::load(model, config, weights, "", false);
  // Random cells of exactly `length` tokens, so every rank count sees the same work per sample.
  worker::TokenizedCells cells;
  const int n = batch * steps;
  const std::int64_t vocab = model == "scgpt" ? config.at("ntoken").get<std::int64_t>() - 3 : config.at("vocab_size").get<std::int64_t>();
  worker::SplitMix64 rng{7};
  for (int i = 0; i < n; ++i) {
    std::vector<std::int64_t> ids(static_cast<std::size_t>(length));
    std::vector<float> values(static_cast<std::size_t>(length));
    for (int j = 0; j < length; ++j) {
      ids[static_cast<std::size_t>(j)] = 4 + static_cast<std::int64_t>(rng.uniform() * static_cast<double>(vocab - 4));
      values[static_cast<std::size_t>(j)] = static_cast<float>(static_cast<int>(rng.uniform() * 51));
    }
    cells.ids.push_back(std::move(ids));
    if (model == "scgpt") cells.values.push_back(std::move(values));
  }
  worker::FineTuneInput input;
  input.cells = &cells;
  for (int i = 0; i < n; ++i) {
    input.train.push_back(static_cast<std::size_t>(i));
    input.y_train.push_back(static_cast<std::int8_t>(i % 2));
  }
  nlohmann::json cell{{"model", {{"name", model}}},
                      {"seed", 0},
                      {"strategy", {{"name", "lora"}, {"options", {{"r", 8}, {"alpha", 8.0}, {"dropout", 0.0}, {"targets", info.lora_targets}}}}},
                      {"head", {{"layers", {512, 512}}}},
                      {"train", {{"epochs", 1}, {"batch_size", batch}, {"lr", 1e-4}, {"weight_decay", 0.01}}}};
  std::unique_ptr<cluster::MpiCollective> group;
  if (size > 1) group = std::make_unique<cluster::MpiCollective>(MPI_COMM_WORLD);
  const auto result = worker::finetune_lora(loaded, cell, input, group.get(), "");
  if (rank == 0) {
    const double per_step = result.log.at("train_s").get<double>() / static_cast<double>(steps);
    std::printf("lora-step model=%s preset=%s ranks=%d threads_per_rank=%d global_batch=%d length=%d steps=%d: %.4f s/step "
                "(%.1f cells/s), %.1f MB all-reduced per step\n",
                model.c_str(), preset.c_str(), size, worker::torch_threads(), batch, length, steps, per_step,
                static_cast<double>(batch) / per_step, result.log.at("allreduce_bytes").get<double>() / 1e6 / steps);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cluster::MpiSession mpi(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  worker::set_torch_threads(1);  // CONTRACTS §11: one compute thread per rank at every rank count
  worker::keep_freed_memory();
  try {
    if (mode == "allreduce") {
      const int rounds = argc > 2 ? std::stoi(argv[2]) : 5;
      const double bucket_mb = argc > 3 ? std::stod(argv[3]) : 25.0;
      return bench_allreduce(rounds, static_cast<std::size_t>(bucket_mb * (1 << 20)));
    }
    if (mode == "lora-step") {
      const std::string model = argc > 2 ? argv[2] : "scgpt";
      const std::string preset = argc > 3 ? argv[3] : "tiny";
      const int batch = argc > 4 ? std::stoi(argv[4]) : 64;
      const int steps = argc > 5 ? std::stoi(argv[5]) : 8;
      const int length = argc > 6 ? std::stoi(argv[6]) : 256;
      const std::string weights = argc > 7 ? argv[7] : "";
      return bench_lora_step(model, preset, batch, steps, length, weights);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data_parallel: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: bench_data_parallel allreduce [ROUNDS] [BUCKET_MB] | lora-step [MODEL] [PRESET] [BATCH] [STEPS] [LENGTH] [WEIGHTS]\n");
  return 2;
}
