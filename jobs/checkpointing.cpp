// Gathering, checking and restoring checkpoints across ranks (Note [checkpoint gather]).
#include "jobs/checkpointing.hpp"

#include "io/checksum.hpp"
#include "jobs/clock_text.hpp"
#include "common/error.hpp"

namespace astroclear::jobs {
namespace {

io::FloatArray to_array(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();
  io::FloatArray a;
  a.shape.assign(c.sizes().begin(), c.sizes().end());
  a.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return a;
}

torch::Tensor to_tensor(const io::FloatArray& a) {
  return torch::from_blob(const_cast<float*>(a.values.data()), a.shape, torch::kFloat32).clone();
}

/// "[3,17,29]", or "none".
template <class T>
std::string index_list(const std::vector<T>& indices) {
  if (indices.empty()) return "none";
  std::string text;
  for (const T t : indices) text += (text.empty() ? "[" : ",") + std::to_string(t);
  return text + "]";
}

}  // namespace

io::Checkpoint gather_checkpoint(Trainer& trainer, const torch::Tensor& latent, const LoadedStack& loaded,
                                 const TrainConfig& config, const std::string& software_version,
                                 mpi::Communicator& comm) {
  TrainerState state = trainer.state();
  const StackPlan& plan = loaded.plan;
  const auto& owners = plan.owners;
  const auto n = static_cast<std::int64_t>(plan.fit.size());  // the sharded axis: fitted exposures
  io::Checkpoint c;
  // Rank 0 assembles each sharded tensor in global exposure order; the others send their rows. On
  // tiles (Note [tiles]) every tile's ranks hold the same parameters: the first tile's send them.
  const int holders = plan.shards > 0 ? plan.shards : comm.size();
  std::vector<torch::Tensor> global;  // value, exp_avg, exp_avg_sq per tensor (rank 0)
  for (std::size_t i = 0; i < state.tensors.size(); ++i) {
    const TensorState& t = state.tensors[i];
    const torch::Tensor parts[3] = {t.value, t.exp_avg, t.exp_avg_sq};
    for (int kind = 0; kind < 3; ++kind) {
      const int tag = static_cast<int>(3 * i) + kind;
      torch::Tensor local = parts[kind].contiguous();
      if (!t.sharded) {
        if (comm.rank() == 0) global.push_back(local);
        continue;
      }
      if (comm.rank() != 0) {
        if (comm.rank() < holders) comm.send(local.data_ptr<float>(), local.numel(), 0, tag);
        continue;
      }
      std::vector<std::int64_t> shape(local.sizes().begin(), local.sizes().end());
      shape[0] = n;
      torch::Tensor all = torch::empty(shape);
      for (int r = 0; r < holders; ++r) {
        if (owners[r].empty()) continue;
        torch::Tensor rows = r == 0 ? local : torch::empty({static_cast<std::int64_t>(owners[r].size()), all[0].numel()});
        if (r != 0) comm.receive(rows.data_ptr<float>(), rows.numel(), r, tag);
        rows = rows.reshape({static_cast<std::int64_t>(owners[r].size()), -1});
        for (std::size_t k = 0; k < owners[r].size(); ++k) {
          all[plan.fit_position(owners[r][k])].view({-1}).copy_(rows[static_cast<std::int64_t>(k)]);
        }
      }
      global.push_back(all);
    }
  }
  if (comm.rank() != 0) return c;

  c.iteration = state.iteration;
  c.ranks = comm.size();
  c.created_utc = utc_now();
  c.software_version = software_version;
  for (const Setting& s : config.settings()) c.config.emplace_back(s.key, s.value);
  c.loss_history = state.loss_history;
  c.manifest = loaded.plan.spec.source;
  c.height = loaded.plan.height;
  c.width = loaded.plan.width;
  c.flux_unit = loaded.stack.flux_unit;
  for (std::size_t t = 0; t < plan.spec.exposures.size(); ++t) {
    const auto& spec = plan.spec.exposures[t];
    c.inputs.push_back({spec.label(), spec.psf, loaded.checksums[t]});
  }
  c.held_out.assign(plan.held_out.begin(), plan.held_out.end());
  if (const ValidationTrack* track = trainer.validation()) {
    c.validation.iterations = {track->iterations().begin(), track->iterations().end()};
    c.validation.losses = track->losses();
    if (track->best_latent().defined()) c.validation.best_latent = to_array(track->best_latent());
  }
  for (std::size_t i = 0; i < state.tensors.size(); ++i) {
    io::CheckpointTensor t;
    t.name = state.tensors[i].name;
    t.sharded = state.tensors[i].sharded;
    t.adam_step = state.tensors[i].adam_step;
    t.value = to_array(global[3 * i]);
    t.exp_avg = to_array(global[3 * i + 1]);
    t.exp_avg_sq = to_array(global[3 * i + 2]);
    c.tensors.push_back(std::move(t));
  }
  c.latent = to_array(latent);
  return c;
}

std::vector<std::string> check_compatible(const io::Checkpoint& c, const std::string& path, const LoadedStack& loaded,
                                          const TrainConfig& config) {
  const auto& exposures = loaded.plan.spec.exposures;
  const std::string refuse = path + " is a checkpoint of other inputs: ";
  if (c.inputs.size() != exposures.size()) {
    throw Error(refuse + std::to_string(c.inputs.size()) + " exposures, but " + loaded.plan.spec.source + " lists " +
                std::to_string(exposures.size()));
  }
  if (c.height != loaded.plan.height || c.width != loaded.plan.width) {
    throw Error(refuse + io::shape_text(c.height, c.width) + " px, but the stack is " +
                io::shape_text(loaded.plan.height, loaded.plan.width));
  }
  std::vector<std::string> notes;
  // Note [input fingerprint]: format 3 holds fingerprints, versions 1 and 2 checksums of whole planes.
  const bool plane_checksums = c.format_version < 3;
  for (std::size_t t = 0; t < exposures.size(); ++t) {
    const std::uint64_t now = plane_checksums ? loaded.plane_checksums[t] : loaded.checksums[t];
    if (plane_checksums && now == 0) {
      const std::string psf_tiles = c.setting("psf_tiles");
      const bool grid_bound = !psf_tiles.empty() && psf_tiles != "none";  // --psf-per-tile: only its grid
      throw Error(path + " is a checkpoint of format " + std::to_string(c.format_version) + " (astroclear " +
                  c.software_version + "), which identifies its inputs by checksums of whole exposures, and "
                  "exposures on tiles are read in parts: " +
                  (grid_bound ? std::string("written with --psf-per-tile on tiles, it cannot be resumed; start over "
                                            "without --resume")
                              : std::string("resume it once without --tiles; the checkpoints that run writes resume "
                                            "on any grid")));
    }
    if (c.inputs[t].checksum != now) {
      throw Error(refuse + "exposure " + std::to_string(t) + " (" + exposures[t].label() + ") has pixel checksum " +
                  io::checksum_text(now) + ", the checkpoint's " + c.inputs[t].file + " had " +
                  io::checksum_text(c.inputs[t].checksum));
    }
    if (c.inputs[t].file != exposures[t].label()) {
      notes.push_back("exposure " + std::to_string(t) + " was " + c.inputs[t].file + ", now " + exposures[t].label() +
                      " (same pixels)");
    }
  }
  const std::vector<int>& held_out = loaded.plan.held_out;
  if (!std::equal(c.held_out.begin(), c.held_out.end(), held_out.begin(), held_out.end(),
                  [](std::uint64_t a, int b) { return a == static_cast<std::uint64_t>(b); })) {
    throw Error(path + " was written holding out exposures " + index_list(c.held_out) + "; this run holds out " +
                index_list(held_out) + ": a model of other exposures (resume with the same --validation-exposures, "
                "or start over without --resume)");
  }
  for (const Setting& s : config.settings()) {
    std::string saved = c.setting(s.key);
    if (saved.empty()) saved = s.before_it_existed;
    if (saved == s.value) continue;
    if (s.on_resume == OnResume::kMayChange) {
      notes.push_back(s.key + " was " + saved + ", now " + s.value);
      continue;
    }
    throw Error(path + " was written with " + s.key + "=" + saved + "; this run asks for " + s.key + "=" + s.value +
                ": an incompatible configuration (resume with the same " + s.key + ", or start over without --resume)");
  }
  return notes;
}

void restore_checkpoint(const io::Checkpoint& c, Trainer& trainer, const LoadedStack& loaded) {
  std::vector<std::int64_t> mine;
  for (int t : loaded.stack.exposure_ids) mine.push_back(loaded.plan.fit_position(t));
  torch::Tensor rows = torch::tensor(mine, torch::kInt64);
  TrainerState state;
  state.iteration = static_cast<int>(c.iteration);
  state.loss_history = c.loss_history;
  for (const auto& t : c.tensors) {
    TensorState s;
    s.name = t.name;
    s.sharded = t.sharded;
    s.adam_step = t.adam_step;
    s.value = to_tensor(t.value);
    s.exp_avg = to_tensor(t.exp_avg);
    s.exp_avg_sq = to_tensor(t.exp_avg_sq);
    if (t.sharded) {
      s.value = s.value.index_select(0, rows);
      s.exp_avg = s.exp_avg.index_select(0, rows);
      s.exp_avg_sq = s.exp_avg_sq.index_select(0, rows);
    }
    state.tensors.push_back(std::move(s));
  }
  trainer.restore(state);
  if (ValidationTrack* track = trainer.validation()) {
    const auto& v = c.validation;
    track->restore({v.iterations.begin(), v.iterations.end()}, v.losses,
                   v.best_latent.values.empty() ? torch::Tensor() : to_tensor(v.best_latent));
  }
}

}  // namespace astroclear::jobs
