// rl or mm with held-out scoring, as the MPI tests run them on any split of ranks and tiles.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "eval/image_mm.hpp"
#include "eval/richardson_lucy.hpp"
#include "jobs/stack_loader.hpp"
#include "src/field_view.hpp"
#include "src/validation.hpp"

namespace astroclear::testing {

/// Collective. Loads `manifest` holding out exposures as rl.validation says (on `request`'s tiles),
/// runs Richardson-Lucy (or ImageMM) with the FFT decoder and held-out scoring; returns the result
/// (the whole field, on rank 0 with tiles) and the held-out losses.
inline std::pair<torch::Tensor, std::vector<double>> held_out_restoration(const std::string& manifest,
                                                                          mpi::Communicator& comm,
                                                                          const jobs::TileRequest& request,
                                                                          bool image_mm_method,
                                                                          const RichardsonLucyConfig& rl,
                                                                          const ImageMmConfig& mm) {
  jobs::LoadedStack loaded = jobs::load_for_fit(manifest, rl.validation, comm, 0, request);
  const FieldView field(comm, loaded.tiles.get());
  const PsfDecoder decoder(loaded.stack.psfs, loaded.stack.height(), loaded.stack.width(), PsfDecoder::Mode::kFft,
                           torch::kCPU);
  const HeldOutLoss held_out(loaded.held_out, 1.0, PsfDecoder::Mode::kFft, torch::kCPU);
  ValidationTrack track(rl.validation);
  IterationHooks hooks;
  hooks.held_out = &held_out;
  hooks.track = &track;
  if (field.tiled()) hooks.field = &field;
  const torch::Tensor x = image_mm_method ? image_mm(loaded.stack, decoder, mm, comm, hooks)
                                          : richardson_lucy(loaded.stack, decoder, rl, comm, hooks);
  return {x, track.losses()};
}

}  // namespace astroclear::testing
