#include "worker/finetune.h"

#include <ATen/autocast_mode.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <numeric>

#include "cluster/tensor_collective.h"
#include "common/error.h"
#include "common/safetensors.h"
#include "worker/models/encoder.h"

namespace sdm::worker {
namespace {

using Clock = std::chrono::steady_clock;
using Params = std::vector<std::pair<std::string, torch::Tensor>>;

/// The learning-rate factor of Hugging Face's get_{constant,linear,cosine}_schedule_with_warmup at `step`.
double lr_factor(const std::string& kind, std::int64_t step, std::int64_t warmup, std::int64_t total) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<std::int64_t>(1, warmup));
  if (kind == "constant") return 1.0;
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<std::int64_t>(1, total - warmup));
  if (kind == "linear") return std::max(0.0, 1.0 - progress);
  return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));  // cosine
}

/// The study's head: Linear(d, 512) ReLU Linear(512, 512) ReLU Linear(512, 2), named as nn.Sequential names it.
torch::nn::Sequential make_head(std::int64_t d, const std::vector<int>& layers) {
  torch::nn::Sequential head;
  std::int64_t in = d;
  for (int width : layers) {
    head->push_back(torch::nn::Linear(in, width));
    head->push_back(torch::nn::ReLU());
    in = width;
  }
  head->push_back(torch::nn::Linear(in, 2));
  return head;
}

/// Positions into `y` held out for validation: round(fraction * n_c) of each class, seeded.
std::vector<std::size_t> validation_positions(const std::vector<std::int8_t>& y, double fraction, std::uint64_t seed) {
  std::vector<std::size_t> out;
  if (fraction <= 0) return out;
  auto gen = at::detail::createCPUGenerator(seed);
  for (std::int8_t c : {0, 1}) {
    std::vector<std::size_t> members;
    for (std::size_t i = 0; i < y.size(); ++i) {
      if (y[i] == c) members.push_back(i);
    }
    const auto n = static_cast<std::int64_t>(members.size());
    const auto take = static_cast<std::int64_t>(std::llround(fraction * static_cast<double>(n)));
    const auto perm = torch::randperm(n, gen, torch::kInt64);
    const auto* p = perm.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < std::min(take, n - 1); ++i) out.push_back(members[static_cast<std::size_t>(p[i])]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Moves a batch's inputs to the training device.
ModelInputs to_device(ModelInputs inputs, const torch::Device& device) {
  if (device.is_cpu()) return inputs;
  for (auto& [name, t] : inputs) t = t.to(device);
  return inputs;
}

/// bfloat16 autocast for CUDA training (a no-op on CPU, where float32 keeps runs deterministic).
class CudaAutocast {
 public:
  explicit CudaAutocast(bool on) : on_(on) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);  // the device-generic API of LibTorch >= 2.4
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~CudaAutocast() {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool on_;
};

class Trainer {
 public:
  Trainer(LoadedModel& model, const nlohmann::json& config, const FineTuneInput& input, cluster::Collective* group)
      : encoder_(*model.encoder), config_(config), input_(input), group_(group),
        rank_(group ? group->rank() : 0), ranks_(group ? group->size() : 1) {
    const auto& train = config.at("train");
    epochs_ = train.at("epochs");
    batch_ = train.at("batch_size");
    lr_ = train.at("lr");
    clip_ = train.value("clip_norm", 0.0);
    schedule_ = train.value("schedule", std::string("constant"));
    warmup_ = train.value("warmup", 0.0);
    patience_ = train.value("patience", 0);
    seed_ = config.at("seed").get<std::uint64_t>();
    const bool cuda = group ? group->memory_space() == cluster::MemorySpace::kCuda : torch::cuda::is_available();
    device_ = cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);

    encoder_.params().to(device_);
    adapters_ = encoder_.add_lora(lora_options(config.at("strategy").at("options")), seed_);
    torch::manual_seed(seed_);
    head_ = make_head(encoder_.dim(), config.at("head").at("layers").get<std::vector<int>>());
    head_->to(device_);
    for (const auto& item : head_->named_parameters()) head_params_.emplace_back("head." + item.key(), item.value());
    for (const auto* set : {&adapters_, &head_params_}) {
      for (const auto& [name, t] : *set) trainable_.push_back(t);
    }
    // Every rank starts from rank 0's parameters (they agree already when seeded alike; this makes it a fact).
    if (group_) {
      torch::NoGradGuard no_grad;
      for (auto& t : trainable_) cluster::broadcast(*group_, t, 0);
      group_->synchronize();
    }
    // Gradients live in flat buckets (DDP's gradient-as-bucket-view): autograd accumulates into them and one
    // all-reduce per bucket sums them, with the loss riding along as one more element.
    std::vector<torch::Tensor> like;
    for (const auto& t : trainable_) like.push_back(t);
    like.push_back(torch::zeros({1}, trainable_.front().options().requires_grad(false)));
    buckets_ = std::make_unique<cluster::GradientBuckets>(like);
    for (std::size_t i = 0; i < trainable_.size(); ++i) trainable_[i].mutable_grad() = buckets_->views()[i];
    optimizer_ = std::make_unique<torch::optim::AdamW>(
        trainable_, torch::optim::AdamWOptions(lr_).weight_decay(train.at("weight_decay").get<double>()));

    // Training rows minus a stratified validation share (positions into input.train).
    const auto val = validation_positions(input.y_train, train.value("validation", 0.0), seed_ + 7);
    std::vector<bool> is_val(input.train.size(), false);
    for (auto p : val) is_val[p] = true;
    for (std::size_t p = 0; p < input.train.size(); ++p) (is_val[p] ? val_ : fit_).push_back(p);
    if (fit_.empty()) throw DataError({"", "train", "0"}, "no training cells left for fine-tuning");
  }

  FineTuneResult run(const std::string& artifact_dir) {
    const auto t0 = Clock::now();
    const auto n = static_cast<std::int64_t>(fit_.size());
    const std::int64_t steps_per_epoch = (n + batch_ - 1) / batch_;
    const std::int64_t total = steps_per_epoch * epochs_;
    const auto warmup_steps = static_cast<std::int64_t>(std::llround(warmup_ * static_cast<double>(total)));
    auto gen = at::detail::createCPUGenerator(seed_ + 1);
    nlohmann::json step_loss = nlohmann::json::array(), epoch_loss = nlohmann::json::array(),
                   val_loss = nlohmann::json::array();
    std::vector<std::int64_t> my_samples;  // positions in fit_ this rank trained on in epoch 1
    double best = std::numeric_limits<double>::infinity();
    int best_epoch = epochs_, since_best = 0;
    bool stopped = false;
    std::vector<torch::Tensor> best_state;
    std::int64_t step = 0;
    int epochs_run = 0;
    for (int epoch = 1; epoch <= epochs_ && !stopped; ++epoch) {
      const auto order = torch::randperm(n, gen, torch::kInt64);
      const auto* ord = order.data_ptr<std::int64_t>();
      double sum = 0;
      for (std::int64_t start = 0; start < n; start += batch_) {
        const std::int64_t m = std::min<std::int64_t>(batch_, n - start);
        // This rank's contiguous share of the global batch.
        const std::int64_t lo = start + m * rank_ / ranks_, hi = start + m * (rank_ + 1) / ranks_;
        std::vector<std::size_t> rows;
        std::vector<float> y;
        for (std::int64_t i = lo; i < hi; ++i) {
          const auto p = fit_[static_cast<std::size_t>(ord[i])];
          rows.push_back(input_.train[p]);
          y.push_back(static_cast<float>(input_.y_train[p]));
          if (epoch == 1) my_samples.push_back(ord[i]);  // a position in fit_, what shard_report counts
        }
        const double loss = train_step(rows, y, static_cast<double>(m), lr_ * lr_factor(schedule_, step, warmup_steps, total));
        step_loss.push_back(loss);
        sum += loss * static_cast<double>(m);
        ++step;
      }
      epoch_loss.push_back(sum / static_cast<double>(n));
      epochs_run = epoch;
      if (!val_.empty()) {
        const double v = validation_loss();
        val_loss.push_back(v);
        if (v < best) {
          best = v;
          best_epoch = epoch;
          since_best = 0;
          best_state = snapshot();
        } else if (patience_ > 0 && ++since_best >= patience_) {
          stopped = true;
        }
      }
    }
    if (!best_state.empty()) restore(best_state);

    FineTuneResult result;
    auto& log = result.log;
    log = {{"ranks", ranks_}, {"device", device_.str()}, {"steps", step}, {"epochs_run", epochs_run},
           {"global_batch", batch_}, {"step_loss", step_loss}, {"epoch_loss", epoch_loss},
           {"validation_loss", val_loss}, {"best_epoch", val_.empty() ? nlohmann::json(nullptr) : nlohmann::json(best_epoch)},
           {"early_stopped", stopped}, {"n_train", fit_.size()}, {"n_validation", val_.size()},
           {"allreduce_bytes", allreduce_bytes_}, {"allreduce_calls", allreduce_calls_},
           {"trainable_parameters", trainable_numel()}, {"adapters", adapters_.size() / 2}};
    log["shards"] = shard_report(my_samples, static_cast<std::int64_t>(fit_.size()));
    if (rank_ == 0 && !artifact_dir.empty()) save_adapters(artifact_dir);
    log["train_s"] = std::chrono::duration<double>(Clock::now() - t0).count();
    encoder_.merge_lora();  // inference at the base model's cost
    if (rank_ == 0) result.test_scores = predict(input_.test);
    if (rank_ == 0 && !artifact_dir.empty()) write_log(artifact_dir, log);
    return result;
  }

 private:
  /// Forward and backward of this rank's shard, then the group's summed gradients and one optimizer step.
  /// Returns the global batch's mean loss.
  double train_step(const std::vector<std::size_t>& rows, const std::vector<float>& y, double global_batch, double lr) {
    encoder_.set_training(true);
    head_->train();
    buckets_->zero();  // not optimizer.zero_grad(): the gradients must stay views into the buckets
    double loss_value = 0;
    if (!rows.empty()) {
      CudaAutocast autocast(device_.is_cuda());
      const auto logits = forward(rows);
      const auto target = one_hot(y);
      // BCEWithLogitsLoss(mean) over the global batch's 2 x m logits, summed here over this rank's share.
      const auto loss = torch::binary_cross_entropy_with_logits(logits.to(torch::kFloat32), target, {}, {}, at::Reduction::Sum) /
                        (2.0 * global_batch);
      loss.backward();
      loss_value = loss.item<double>();
    }
    // A parameter the forward did not reach (an adapter above the embedding layer) keeps its zero gradient, so
    // AdamW treats it the same at 1 and at k ranks.
    if (group_) {
      auto& loss_slot = buckets_->views().back();
      loss_slot.fill_(loss_value);
      const auto stats = buckets_->allreduce(*group_, cluster::ReduceOp::kSum);
      allreduce_bytes_ += static_cast<double>(stats.bytes);
      allreduce_calls_ += static_cast<double>(stats.buckets);
      loss_value = loss_slot.item<double>();
    }
    if (clip_ > 0) torch::nn::utils::clip_grad_norm_(trainable_, clip_);
    for (auto& g : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    optimizer_->step();
    return loss_value;
  }

  torch::Tensor forward(const std::vector<std::size_t>& rows) {
    const auto inputs = to_device(encoder_.collate(*input_.cells, rows), device_);
    return head_->forward(encoder_.forward(inputs, false).cell_embedding);
  }

  torch::Tensor one_hot(const std::vector<float>& y) const {
    const auto t = torch::tensor(y, torch::kFloat32).to(device_);
    return torch::stack({1 - t, t}, 1);
  }

  /// Mean loss over the validation cells, each rank scoring a share.
  double validation_loss() {
    encoder_.set_training(false);
    head_->eval();
    torch::NoGradGuard no_grad;
    const auto n = static_cast<std::int64_t>(val_.size());
    const std::int64_t lo = n * rank_ / ranks_, hi = n * (rank_ + 1) / ranks_;
    double sum = 0;
    for (std::int64_t start = lo; start < hi; start += batch_) {
      std::vector<std::size_t> rows;
      std::vector<float> y;
      for (std::int64_t i = start; i < std::min(hi, start + batch_); ++i) {
        rows.push_back(input_.train[val_[static_cast<std::size_t>(i)]]);
        y.push_back(static_cast<float>(input_.y_train[val_[static_cast<std::size_t>(i)]]));
      }
      sum += torch::binary_cross_entropy_with_logits(forward(rows).to(torch::kFloat32), one_hot(y), {}, {}, at::Reduction::Sum)
                 .item<double>();
    }
    if (group_) {
      auto t = torch::full({1}, sum, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
      cluster::allreduce(*group_, t, cluster::ReduceOp::kSum);
      group_->synchronize();
      sum = t.item<double>();
    }
    return sum / (2.0 * static_cast<double>(n));
  }

  std::vector<torch::Tensor> snapshot() const {
    std::vector<torch::Tensor> out;
    for (const auto& t : trainable_) out.push_back(t.detach().clone());
    return out;
  }

  void restore(const std::vector<torch::Tensor>& state) {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < trainable_.size(); ++i) trainable_[i].copy_(state[i]);
  }

  std::int64_t trainable_numel() const {
    std::int64_t n = 0;
    for (const auto& t : trainable_) n += t.numel();
    return n;
  }

  /// Which training samples each rank saw in the first epoch: the group's shares must be disjoint and cover
  /// every training cell once.
  nlohmann::json shard_report(const std::vector<std::int64_t>& mine, std::int64_t n) {
    std::vector<std::int64_t> counts(static_cast<std::size_t>(ranks_), 0);
    std::vector<std::int64_t> seen(static_cast<std::size_t>(n), 0);
    if (group_) {
      auto count = torch::full({1}, static_cast<std::int64_t>(mine.size()), torch::kInt64);
      auto all_counts = torch::zeros({ranks_}, torch::kInt64);
      for (auto p : mine) ++seen[static_cast<std::size_t>(p)];
      auto marks = torch::from_blob(seen.data(), {n}, torch::kInt64).clone();
      if (device_.is_cuda()) {
        count = count.to(device_);
        all_counts = all_counts.to(device_);
        marks = marks.to(device_);
      }
      cluster::allgather(*group_, count, all_counts);
      cluster::allreduce(*group_, marks, cluster::ReduceOp::kSum);
      group_->synchronize();
      all_counts = all_counts.cpu();
      marks = marks.cpu();
      for (std::int64_t r = 0; r < ranks_; ++r) counts[static_cast<std::size_t>(r)] = all_counts[r].item<std::int64_t>();
      std::copy(marks.data_ptr<std::int64_t>(), marks.data_ptr<std::int64_t>() + n, seen.begin());
    } else {
      counts[0] = static_cast<std::int64_t>(mine.size());
      for (auto p : mine) ++seen[static_cast<std::size_t>(p)];
    }
    const bool exactly_once = std::all_of(seen.begin(), seen.end(), [](std::int64_t s) { return s == 1; });
    return {{"samples_per_rank", counts}, {"disjoint_cover", exactly_once}};
  }

  void save_adapters(const std::string& dir) const {
    std::filesystem::create_directories(dir);
    std::vector<torch::Tensor> keep;
    std::vector<SafetensorsTensor> tensors;
    for (const auto* set : {&adapters_, &head_params_}) {
      for (const auto& [name, t] : *set) {
        keep.push_back(t.detach().to(torch::kCPU, torch::kFloat32).contiguous());
        const auto& c = keep.back();
        tensors.push_back({name, "F32", std::vector<std::int64_t>(c.sizes().begin(), c.sizes().end()),
                           std::span<const std::byte>(static_cast<const std::byte*>(c.data_ptr()), c.nbytes())});
      }
    }
    const auto& o = config_.at("strategy").at("options");
    write_safetensors(dir + "/adapters.safetensors", tensors,
                      {{"format", "sdm-lora"}, {"base_model", config_.at("model").at("name").get<std::string>()},
                       {"r", std::to_string(o.at("r").get<int>())}, {"lora_alpha", o.at("alpha").dump()},
                       {"lora_dropout", o.at("dropout").dump()}, {"target_modules", o.at("targets").dump()}});
  }

  static void write_log(const std::string& dir, const nlohmann::json& log) {
    std::ofstream(dir + "/train_log.json") << log.dump(1) << "\n";
  }

  /// Probability of sensitive for `rows`, batched longest first, under the merged weights.
  std::vector<double> predict(const std::vector<std::size_t>& rows) {
    encoder_.set_training(false);
    head_->eval();
    torch::NoGradGuard no_grad;
    std::vector<std::size_t> order(rows.size());
    std::iota(order.begin(), order.end(), 0);
    const auto& ids = input_.cells->ids;
    // cells that attend to each other (CellPLM) are scored in fixed groups in input order, as embed_cells does
    const auto group = static_cast<std::size_t>(encoder_.cells_per_forward());
    if (group == 0) {
      std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return ids[rows[a]].size() > ids[rows[b]].size(); });
    }
    const auto step = group > 0 ? group : static_cast<std::size_t>(batch_);
    std::vector<double> out(rows.size());
    for (std::size_t start = 0; start < order.size(); start += step) {
      std::vector<std::size_t> batch;
      const auto end = std::min(order.size(), start + step);
      for (std::size_t i = start; i < end; ++i) batch.push_back(rows[order[i]]);
      const auto p = torch::softmax(forward(batch).to(torch::kFloat64), 1).select(1, 1).cpu().contiguous();
      for (std::size_t i = start; i < end; ++i) out[order[i]] = p[static_cast<std::int64_t>(i - start)].item<double>();
    }
    return out;
  }

  Encoder& encoder_;
  const nlohmann::json& config_;
  const FineTuneInput& input_;
  cluster::Collective* group_;
  int rank_, ranks_;
  int epochs_ = 1, batch_ = 1, patience_ = 0;
  double lr_ = 1e-4, clip_ = 0, warmup_ = 0;
  std::string schedule_;
  std::uint64_t seed_ = 0;
  torch::Device device_{torch::kCPU};
  Params adapters_, head_params_;
  torch::nn::Sequential head_{nullptr};
  std::vector<torch::Tensor> trainable_;
  std::unique_ptr<cluster::GradientBuckets> buckets_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<std::size_t> fit_, val_;
  double allreduce_bytes_ = 0, allreduce_calls_ = 0;
};

}  // namespace

bool all_ranks_ok(cluster::Collective* group, bool ok) {
  if (!group) return ok;
  const bool cuda = group->memory_space() == cluster::MemorySpace::kCuda;
  auto flag = torch::full({1}, ok ? std::int64_t{0} : std::int64_t{1}, torch::kInt64);
  if (cuda) flag = flag.to(torch::kCUDA);
  cluster::allreduce(*group, flag, cluster::ReduceOp::kMax);
  group->synchronize();
  return flag.cpu().item<std::int64_t>() == 0;
}

FineTuneResult finetune_lora(LoadedModel& model, const nlohmann::json& config, const FineTuneInput& input,
                             cluster::Collective* group, const std::string& artifact_dir) {
  if (!input.cells) throw DataError({"", "finetune", ""}, "no tokenized cells");
  Trainer trainer(model, config, input, group);
  return trainer.run(artifact_dir);
}

}  // namespace sdm::worker
