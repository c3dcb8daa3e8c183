// Tiles on real ranks: the halo exchange and its adjoint, and training on any grid of tiles x shards
// gives the whole-field result (Note [tiles]).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/order_statistics.hpp"
#include "io/exposure_reader.hpp"
#include "io/fits_file.hpp"

#include "eval/coadd.hpp"
#include "eval/image_mm.hpp"
#include "eval/richardson_lucy.hpp"
#include "jobs/coverage.hpp"
#include "jobs/stack_loader.hpp"
#include "mpi/halo_exchange.hpp"
#include "mpi/mpi_environment.hpp"
#include "src/cpu_kernels.hpp"
#include "src/trainer.hpp"
#include "tests/memory_tracker.hpp"
#include "tests/mpi/held_out_restoration.hpp"
#include "tests/mpi/mpi_test_env.hpp"
#include "tests/test_support.hpp"

namespace astroclear {
namespace {

using testing::on_all_ranks;

/// The grids of tiles x shards a run on `ranks` ranks can take (every one of more than one tile).
std::vector<mpi::TileGrid> grids_for(int ranks) {
  switch (ranks) {
    case 2: return {{2, 1}, {1, 2}};
    case 3: return {{3, 1}, {1, 3}};
    case 4: return {{2, 2}, {2, 1}, {1, 2}};  // the last two with 2 exposure shards per tile
    default: return {};
  }
}

/// Rank r's random tensor of `shape`, the same wherever it is made.
torch::Tensor seeded(std::vector<std::int64_t> shape, std::uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn(shape);
}

class Tiles : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    comm_ = testing::g_mpi_env->make_communicator(mpi::Backend::kMpi, -1);
  }
  std::unique_ptr<mpi::Communicator> comm_;
};

TEST_F(Tiles, HaloExchangeIsTheWholeFieldsRingAndItsBackwardTheAdjoint) {
  const std::int64_t height = 23, width = 29, halo = 3;  // uneven tiles
  const torch::Tensor field = seeded({height, width}, 7);
  const torch::Tensor padded = torch::constant_pad_nd(field, {halo, halo, halo, halo});
  for (const mpi::TileGrid& grid : grids_for(comm_->size())) {
    const auto layout = mpi::RankLayout::make(grid, comm_->size(), height, width, halo);
    mpi::TileRanks ranks = mpi::TileRanks::make(layout, *comm_, height, width, halo);
    const mpi::TileGeometry& t = ranks.tile;
    const torch::Tensor x =
        field.narrow(0, t.y0, t.height()).narrow(1, t.x0, t.width()).clone().requires_grad_(true);
    const torch::Tensor frame = mpi::halo_exchange(x, halo, ranks.neighbours, *ranks.exposure_group);
    // The frame is the zero-padded field's window, exactly.
    const torch::Tensor expected = padded.narrow(0, t.y0, t.frame_height()).narrow(1, t.x0, t.frame_width());
    const double forward_error = (frame - expected).abs().max().item<double>();
    // Adjoint: sum over ranks of <frame, v> = sum over ranks of <x, backward(v)>.
    const torch::Tensor v = seeded({t.frame_height(), t.frame_width()}, 100 + comm_->rank());
    const torch::Tensor grad = torch::autograd::grad({frame}, {x}, {v})[0];
    double dots[2] = {(frame.detach().to(torch::kFloat64) * v.to(torch::kFloat64)).sum().item<double>(),
                      (x.detach().to(torch::kFloat64) * grad.to(torch::kFloat64)).sum().item<double>()};
    comm_->all_reduce_sum(dots, 2);
    // And the whole field's gradient of the sum of <frame, v> over the tiles (of one exposure
    // group: the exchange runs within it) is what each tile's backward returns.
    torch::Tensor assembled = torch::zeros({height + 2 * halo, width + 2 * halo});
    assembled.narrow(0, t.y0, t.frame_height()).narrow(1, t.x0, t.frame_width()).add_(v);
    ranks.exposure_group->all_reduce_sum(assembled.data_ptr<float>(), assembled.numel(), mpi::MemorySpace::kHost);
    const torch::Tensor whole_grad =
        assembled.narrow(0, halo, height).narrow(1, halo, width).narrow(0, t.y0, t.height()).narrow(1, t.x0, t.width());
    const double backward_error = (grad - whole_grad).abs().max().item<double>();
    if (comm_->rank() == 0) {
      std::printf("[P=%d tiles %s] frame error %.3g, <Ax,v> %.9g vs <x,A'v> %.9g, gradient error %.3g\n",
                  comm_->size(), grid.text().c_str(), forward_error, dots[0], dots[1], backward_error);
    }
    EXPECT_EQ(forward_error, 0.0);
    EXPECT_NEAR(dots[0], dots[1], 1e-5 * std::abs(dots[0]));
    EXPECT_LT(backward_error, 1e-5);
    ASSERT_TRUE(on_all_ranks(*comm_, !HasFailure()));
  }
}

// Note [order statistics]: medians and quartiles of values spread over the ranks are those of the
// values gathered, whatever their signs, repeats and zeros.
TEST_F(Tiles, OrderStatisticsOverRanksAreThoseOfTheGatheredValues) {
  const int ranks = comm_->size();
  // Rank r's values: normals, some repeated, some +0 and -0, one set empty on odd ranks; made from
  // seeds, so every rank can make every rank's.
  const auto values_of = [](int rank) {
    torch::manual_seed(1000 + rank);
    const torch::Tensor normals = torch::randn({1500 + 37 * rank}) * 1e3;
    std::vector<std::vector<float>> sets(3);
    sets[0].assign(normals.data_ptr<float>(), normals.data_ptr<float>() + normals.numel());
    for (int i = 0; i < 40; ++i) sets[0].push_back(i % 2 == 0 ? 0.0f : -0.0f);
    for (int i = 0; i < 30; ++i) sets[0].push_back(sets[0][static_cast<std::size_t>(i)]);
    if (rank % 2 == 0) sets[1].assign(sets[0].begin(), sets[0].begin() + 25);
    sets[2].assign(7, -2.5f);
    return sets;
  };
  std::vector<std::vector<float>> all(3);
  for (int r = 0; r < ranks; ++r) {
    const auto sets = values_of(r);
    for (int s = 0; s < 3; ++s) all[s].insert(all[s].end(), sets[s].begin(), sets[s].end());
  }
  std::vector<OrderQuery> queries;
  for (std::size_t s = 0; s < 3; ++s) {
    const auto n = static_cast<std::int64_t>(all[s].size());
    for (const std::int64_t k : {std::int64_t{0}, n / 4, (n - 1) / 2, n / 2, n - 1}) queries.push_back({s, k});
  }
  const std::vector<float> gathered = order_statistics(all, queries);  // std::nth_element
  const std::vector<float> over_ranks = order_statistics(
      values_of(comm_->rank()), queries, [this](std::vector<double>& v) { comm_->all_reduce_sum(v.data(), v.size()); });
  for (std::size_t i = 0; i < queries.size(); ++i) {
    std::vector<float> sorted = all[queries[i].set];
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(gathered[i], sorted[static_cast<std::size_t>(queries[i].k)]) << "query " << i;
    EXPECT_EQ(over_ranks[i], gathered[i]) << "query " << i << " (set " << queries[i].set << ", k " << queries[i].k << ")";
    EXPECT_FALSE(std::signbit(over_ranks[i]) && over_ranks[i] == 0.0f) << "-0 is answered as +0";
  }
  ASSERT_TRUE(on_all_ranks(*comm_, !HasFailure()));
}

/// Sets subtract_sky (and sky_mesh_px) in the [stack] table of `manifest`: rank 0 writes, all wait.
void set_sky_subtraction(mpi::Communicator& comm, const std::string& manifest, const std::string& mode) {
  if (comm.rank() == 0) {
    std::ifstream in(manifest);
    std::string out;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("subtract_sky", 0) == 0 || line.rfind("sky_mesh_px", 0) == 0) continue;
      out += line + "\n";
      if (line == "[stack]") out += "subtract_sky = \"" + mode + "\"\nsky_mesh_px = 16\n";
    }
    std::ofstream(manifest) << out;
  }
  comm.barrier();
}

// Note [exposure parts]: each tile's ranks read only its frame of each exposure, and get what a
// reader of the whole exposure gets: the same pixels (sky subtraction included), the same flux
// unit, fingerprints, coverage and coadd.
TEST_F(Tiles, TilesReadTheirFramesAloneAndGetTheWholeReadsPixels) {
  const auto grids = grids_for(comm_->size());
  if (grids.empty()) GTEST_SKIP() << "tile grids are tested on 2 to 4 ranks";
  std::unique_ptr<testing::TempDir> dir;
  const std::string manifest = testing::simulated_manifest(*comm_, dir, 5, 70, 83, 17);
  ValidationConfig none;
  none.exposures = 0;
  for (const std::string sky : {"none", "median", "mesh"}) {
    set_sky_subtraction(*comm_, manifest, sky);
    mpi::LocalCommunicator local;
    const jobs::LoadedStack whole = jobs::load_for_fit(manifest, none, local);
    const jobs::Coverage whole_coverage = jobs::stack_coverage(whole, local);
    const torch::Tensor whole_coadd = inverse_variance_coadd(whole.stack, local);
    for (const mpi::TileGrid& grid : grids) {
      const jobs::LoadedStack tiled = jobs::load_for_fit(manifest, none, *comm_, 0, jobs::TileRequest{grid, 4});
      const mpi::TileGeometry& t = tiled.tiles->tile;
      const std::int64_t g = t.halo;
      double image_error = 0, sigma_error = 0, good_error = 0;
      for (std::int64_t k = 0; k < tiled.stack.local_count(); ++k) {
        const int e = tiled.stack.exposure_ids[static_cast<std::size_t>(k)];
        const auto window = [&](const torch::Tensor& plane) {  // the frame's window of a padded plane
          return plane.narrow(0, t.y0, t.frame_height()).narrow(1, t.x0, t.frame_width());
        };
        const torch::Tensor reflected =
            torch::reflection_pad2d(whole.stack.images[e].unsqueeze(0), {g, g, g, g}).squeeze(0);
        const auto ring = [&](const torch::Tensor& plane, float fill) {
          torch::Tensor framed = torch::full({t.height() + 2 * g, t.width() + 2 * g}, fill);
          framed.narrow(0, g, t.height()).narrow(1, g, t.width()).copy_(
              plane.narrow(0, t.y0, t.height()).narrow(1, t.x0, t.width()));
          return framed;
        };
        image_error = std::max(image_error, (tiled.stack.images[k] - window(reflected)).abs().max().item<double>());
        sigma_error = std::max(sigma_error, (tiled.stack.sigmas[k] - ring(whole.stack.sigmas[e], 1)).abs().max().item<double>());
        good_error = std::max(good_error, (tiled.stack.good[k] - ring(whole.stack.good[e], 0)).abs().max().item<double>());
      }
      const jobs::Coverage coverage = jobs::stack_coverage(tiled, *comm_);
      const FieldView field(*comm_, tiled.tiles.get());
      const torch::Tensor coadd = field.whole(inverse_variance_coadd(tiled.stack, field));
      std::printf("[P=%d tiles %s rank %d, subtract_sky %s] frames read alone vs the whole reads: image %.3g, sigma "
                  "%.3g, mask %.3g; flux unit %.9g vs %.9g\n", comm_->size(), grid.text().c_str(), comm_->rank(),
                  sky.c_str(), image_error, sigma_error, good_error, tiled.stack.flux_unit, whole.stack.flux_unit);
      EXPECT_EQ(image_error, 0.0);
      EXPECT_EQ(sigma_error, 0.0);
      EXPECT_EQ(good_error, 0.0);
      EXPECT_EQ(tiled.stack.flux_unit, whole.stack.flux_unit);
      EXPECT_EQ(tiled.checksums, whole.checksums);
      EXPECT_EQ(tiled.plane_checksums, std::vector<std::uint64_t>(tiled.checksums.size(), 0));
      EXPECT_EQ(std::count(whole.plane_checksums.begin(), whole.plane_checksums.end(), 0), 0);
      EXPECT_EQ(static_cast<std::int64_t>(tiled.saturated.size()), t.height() * t.width());
      if (comm_->rank() == 0) {
        EXPECT_EQ(coverage.counts.pixels, whole_coverage.counts.pixels);
        EXPECT_EQ(coverage.flags.pixels, whole_coverage.flags.pixels);
        const torch::Tensor nan_as_zero = torch::nan_to_num(coadd, 0.0), expected = torch::nan_to_num(whole_coadd, 0.0);
        EXPECT_TRUE(torch::equal(coadd.isnan(), whole_coadd.isnan()));
        EXPECT_LT((nan_as_zero - expected).abs().max().item<double>(), 1e-6 * expected.abs().max().item<double>());
      } else {
        EXPECT_EQ(coverage.counts.pixels.size(), 0u);  // the field is assembled on rank 0 alone
        EXPECT_EQ(coadd.numel(), 0);
      }
      ASSERT_TRUE(on_all_ranks(*comm_, !HasFailure())) << "tiles " << grid.text() << ", subtract_sky " << sky;
    }
  }
}

// Note [exposure parts]: a rank that cannot read its tile's part of an exposure (here the image
// file ends below the rows the other tile reads) stops every rank, which names the file, the tile
// and the rank.
TEST_F(Tiles, ATileThatCannotBeReadStopsEveryRankNamingTheFileTileAndRank) {
  if (comm_->size() != 2) GTEST_SKIP() << "on 2 ranks";
  std::unique_ptr<testing::TempDir> dir;
  const std::string manifest = testing::simulated_manifest(*comm_, dir, 4, 96, 40, 23);
  if (comm_->rank() == 0) {  // exposure 2 as separate planes, its image cut after 4 FITS blocks (row 72)
    const std::string folder = dir->path().string();
    const testing::MefPlanes planes = testing::read_planes(folder + "/exp_002.fits");
    const double fscale = *io::FitsFile::open(folder + "/exp_002.fits").read_double("FSCALE");
    io::FitsFile image = io::FitsFile::create(folder + "/img.fits");
    image.write_image(planes.image);
    image.write_key("FSCALE", fscale);
    image.close();
    io::FitsFile variance = io::FitsFile::create(folder + "/var.fits");
    variance.write_image(planes.variance);
    variance.close();
    io::FitsFile mask = io::FitsFile::create(folder + "/mask.fits");
    testing::write_mask_with_plane_names(mask, planes);
    mask.close();
    const std::string cut = folder + "/img.fits";
    std::filesystem::resize_file(cut, std::filesystem::file_size(cut) - 6 * 2880 + 4 * 2880);
    std::ifstream in(manifest);
    std::string text;
    for (std::string line; std::getline(in, line);) {
      if (line == "file = \"exp_002.fits\"") line = "image = \"img.fits\"\nvariance = \"var.fits\"\nmask = \"mask.fits\"";
      text += line + "\n";
    }
    std::ofstream(manifest) << text;
  }
  comm_->barrier();
  ValidationConfig none;
  none.exposures = 0;
  std::string message;
  int rank = -2;
  try {
    jobs::load_for_fit(manifest, none, *comm_, 0, jobs::TileRequest{mpi::TileGrid{2, 1}, 4});
  } catch (const CollectiveError& e) {
    message = e.what();
    rank = e.rank();
  }
  std::printf("[rank %d] %s (rank %d)\n", comm_->rank(), message.c_str(), rank);
  EXPECT_NE(message.find("img.fits"), std::string::npos) << message;
  EXPECT_NE(message.find("(reading tile 1,0 (rows 48-95, columns 0-39))"), std::string::npos) << message;
  EXPECT_EQ(rank, 1);
  ASSERT_TRUE(on_all_ranks(*comm_, !HasFailure()));
}

struct IterationPeak {
  double bytes = 0;            ///< live tensors at the peak, less the sigmas and mask (host on a GPU run)
  std::int64_t exposures = 0;  ///< this rank's
  double frame_pixels = 0;     ///< of its tile's frame (the field without tiles)
};

/// The peak of live tensors over one iteration on the GPU path (astroclear's CPU kernels off).
IterationPeak peak_of_an_iteration(const std::string& manifest, mpi::Communicator& comm, const mpi::TileGrid& grid) {
  static testing::TrackingAllocator tracker;  // outlives every tensor it allocated
  tracker.install();
  IterationPeak peak;
  {
    const ScopedFastCpuKernels libtorch_operations(false);
    TrainConfig config;
    config.decoder = DecoderChoice::kFft;
    config.validation.exposures = 0;
    jobs::LoadedStack loaded = jobs::load_for_fit(manifest, config.validation, comm, 0, jobs::TileRequest{grid, 3});
    Trainer trainer(config, loaded.stack, comm, torch::kCPU, loaded.tiles.get());
    trainer.step();
    trainer.loss_history();
    testing::PeakSampler sampler;
    trainer.step();
    trainer.loss_history();
    peak.bytes = static_cast<double>(sampler.peak()) -
                 static_cast<double>(loaded.stack.sigmas.nbytes() + loaded.stack.good.nbytes());
    peak.exposures = loaded.stack.local_count();
    peak.frame_pixels = static_cast<double>(loaded.stack.height() * loaded.stack.width());
  }
  tracker.uninstall();
  return peak;
}

// What tiles are for: a rank's memory falls with its tile's share of the field (the frame's, halo
// included), in units of the whole-field planes of its exposures.
TEST_F(Tiles, PerRankMemoryFallsWithTheFramesShareOfTheField) {
  const auto grids = grids_for(comm_->size());
  if (grids.empty()) GTEST_SKIP() << "tile grids are tested on 2 to 4 ranks";
  std::unique_ptr<testing::TempDir> dir;
  const std::int64_t side = 240;
  const std::string manifest = testing::simulated_manifest(*comm_, dir, 8, side, side, 5);
  const double field = static_cast<double>(side * side);
  double whole_planes = 0;
  if (comm_->rank() == 0) {
    mpi::LocalCommunicator local;
    const IterationPeak whole = peak_of_an_iteration(manifest, local, mpi::TileGrid{});
    whole_planes = whole.bytes / (4.0 * static_cast<double>(whole.exposures) * field);
  }
  comm_->all_reduce_sum(&whole_planes, 1);
  const mpi::TileGrid grid = grids.front();
  const IterationPeak tiled = peak_of_an_iteration(manifest, *comm_, grid);
  const double planes = tiled.bytes / (4.0 * static_cast<double>(tiled.exposures) * field);
  const double share = tiled.frame_pixels / field;
  std::printf("[P=%d tiles %s rank %d] peak of an iteration %.2f whole-field planes of its exposures; whole field "
              "%.2f; frame share %.3f: %.2f expected\n", comm_->size(), grid.text().c_str(), comm_->rank(), planes,
              whole_planes, share, whole_planes * share);
  EXPECT_LE(planes, 1.15 * whole_planes * share);
  ASSERT_TRUE(on_all_ranks(*comm_, !HasFailure()));
}

class TiledTraining : public Tiles {
 protected:
  void SetUp() override {
    Tiles::SetUp();
    // 7 exposures of 81 x 95: tiles of uneven sizes on every grid.
    manifest_ = testing::simulated_manifest(*comm_, dir_, 7, 81, 95, 41);
    config_.iterations = 30;
    config_.validation.every = 5;
    config_.validation.stop = StopRule::kLast;

  }

  struct Run {
    std::vector<double> losses, held_out;
    torch::Tensor latent, result;
  };

  Run train(mpi::Communicator& comm, const mpi::TileGrid& grid) {
    const std::int64_t encoder_halo = kernel_halo(config_.kernel_sizes);
    jobs::LoadedStack loaded =
        jobs::load_for_fit(manifest_, config_.validation, comm, 0, jobs::TileRequest{grid, encoder_halo});
    Trainer trainer(config_, loaded.stack, comm, torch::kCPU, loaded.tiles.get());
    trainer.validate_on(loaded.held_out);
    trainer.train();
    Run run;
    run.losses = trainer.loss_history();
    run.held_out = trainer.validation()->losses();
    run.latent = trainer.latent();
    run.result = trainer.result();
    return run;
  }

  std::unique_ptr<testing::TempDir> dir_;  // rank 0 only
  std::string manifest_;
  TrainConfig config_;
};

// With init = random every gradient is far above its rounding, and the tiles reproduce the whole
// field's run to float rounding. With init = identity some depthwise taps start with gradients
// near their rounding, and Adam's first steps (about lr * sign(g)) turn the tiles' different
// summation order into differences of a few 1e-3 (Note [tiles] in docs/design.md): the bound there
// is the measured spread, not float rounding.
TEST_F(TiledTraining, AnyGridOfTilesAndShardsTrainsTheWholeFieldsModel) {
  const auto grids = grids_for(comm_->size());
  if (grids.empty()) GTEST_SKIP() << "tile grids are tested on 2 to 4 ranks";
  for (const auto [init, decoder] : {std::pair{Init::kRandom, DecoderChoice::kDirect},
                                     std::pair{Init::kRandom, DecoderChoice::kFft},
                                     std::pair{Init::kIdentity, DecoderChoice::kFft}}) {
    config_.init = init;
    config_.decoder = decoder;
    const bool exact = init == Init::kRandom;
    Run whole;
    if (comm_->rank() == 0) {
      mpi::LocalCommunicator local;
      whole = train(local, mpi::TileGrid{});
    }
    for (const mpi::TileGrid& grid : grids) {
      const Run tiled = train(*comm_, grid);
      bool ok = true;
      if (comm_->rank() == 0) {
        double worst_loss = 0, worst_held_out = 0;
        for (std::size_t i = 0; i < whole.losses.size() && i < tiled.losses.size(); ++i) {
          worst_loss = std::max(worst_loss, std::abs(tiled.losses[i] - whole.losses[i]) / std::abs(whole.losses[i]));
        }
        for (std::size_t i = 0; i < whole.held_out.size() && i < tiled.held_out.size(); ++i) {
          worst_held_out =
              std::max(worst_held_out, std::abs(tiled.held_out[i] - whole.held_out[i]) / std::abs(whole.held_out[i]));
        }
        const double latent = ((tiled.latent - whole.latent).norm() / whole.latent.norm()).item<double>();
        const double result = ((tiled.result - whole.result).norm() / whole.result.norm()).item<double>();
        std::printf("[P=%d tiles %s x %d shard(s), %s init, %s decoder] loss %.3g, held-out %.3g, latent %.3g, result %.3g "
                    "(largest relative differences)\n",
                    comm_->size(), grid.text().c_str(), static_cast<int>(comm_->size() / grid.count()), exact ? "random" : "identity",
                    decoder == DecoderChoice::kFft ? "fft" : "direct", worst_loss, worst_held_out, latent, result);
        EXPECT_EQ(tiled.losses.size(), whole.losses.size());
        EXPECT_EQ(tiled.held_out.size(), whole.held_out.size());
        EXPECT_LT(worst_loss, exact ? 1e-5 : 1e-3);
        EXPECT_LT(worst_held_out, exact ? 1e-5 : 1e-3);
        EXPECT_LT(latent, exact ? 1e-4 : 1e-2);
        EXPECT_LT(result, exact ? 1e-4 : 1e-2);
        EXPECT_GT(std::abs(whole.losses.back() - whole.losses.front()), 1e-3 * whole.losses.front());
        ok = !HasFailure();
      }
      ASSERT_TRUE(on_all_ranks(*comm_, ok)) << "tiles " << grid.text();
    }
  }
}

// The operations GPUs run (LibTorch's convolutions, the framed depthwise convolution that keeps
// only the frame, bf16 activations): the same invariance, on the CPU.
TEST_F(TiledTraining, LibTorchAndBf16PathsOnTilesAreTheWholeFields) {
  const auto grids = grids_for(comm_->size());
  if (grids.empty()) GTEST_SKIP() << "tile grids are tested on 2 to 4 ranks";
  const ScopedFastCpuKernels libtorch(false);
  config_.init = Init::kRandom;
  config_.iterations = 10;
  for (const Precision precision : {Precision::kFloat32, Precision::kBf16}) {
    config_.precision = precision;
    Run whole;
    if (comm_->rank() == 0) {
      mpi::LocalCommunicator local;
      whole = train(local, mpi::TileGrid{});
    }
    const Run tiled = train(*comm_, grids.front());
    bool ok = true;
    if (comm_->rank() == 0) {
      const double latent = ((tiled.latent - whole.latent).norm() / whole.latent.norm()).item<double>();
      std::printf("[P=%d tiles %s, LibTorch kernels, %s] latent relative L2 difference %.3g\n", comm_->size(),
                  grids.front().text().c_str(), precision == Precision::kBf16 ? "bf16" : "float32", latent);
      // bf16 rounds the activations to 8 bits: the tiles' other summation order shows at that level.
      EXPECT_LT(latent, precision == Precision::kBf16 ? 2e-2 : 1e-4);
      ok = !HasFailure();
    }
    ASSERT_TRUE(on_all_ranks(*comm_, ok));
  }
}

// Note [tile PSFs]: with psf_per_tile each tile's PSF is the PSFEx model at its centre.
TEST_F(TiledTraining, PsfPerTileIsTheModelAtTheTileCentre) {
  if (comm_->size() != 2) GTEST_SKIP() << "on 2 ranks";
  const std::string model = std::string(ASTROCLEAR_TEST_DATA) + "/legacypipe_testcase6/c4d_171113_061941_ooi_r_ls9-psfex.fits";
  if (comm_->rank() == 0) {  // every exposure with the real DECam model, evaluated far out on its CCD
    std::ifstream in(manifest_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string out;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("psf = ", 0) == 0) line = "psf = \"" + model + "\"\npsf_position = [1000.0, 3000.0]";
      out += line + "\n";
    }
    std::ofstream(manifest_) << out;
  }
  comm_->barrier();
  ValidationConfig none;
  none.exposures = 0;
  std::vector<std::string> warnings;
  io::ExposureSpec spec;
  spec.psf = model;
  spec.psf_position = std::array<double, 2>{1000.0, 3000.0};
  const io::Image centre = io::read_psf(spec, 81, 95, warnings);
  for (const bool per_tile : {false, true}) {
    jobs::LoadedStack loaded =
        jobs::load_for_fit(manifest_, none, *comm_, 0, jobs::TileRequest{mpi::TileGrid{2, 1}, 3, per_tile});
    const mpi::TileGeometry& t = loaded.tiles->tile;
    const io::Image expected =
        per_tile ? io::read_psf(spec, 81, 95, warnings, "", {(t.x0 + t.x1 - 95) / 2.0, (t.y0 + t.y1 - 81) / 2.0})
                 : centre;
    const torch::Tensor psf = loaded.stack.psfs.front();
    const torch::Tensor want = torch::from_blob(const_cast<float*>(expected.pixels.data()),
                                                {expected.height, expected.width}).clone();
    const torch::Tensor at_centre =
        torch::from_blob(const_cast<float*>(centre.pixels.data()), {centre.height, centre.width}).clone();
    const double error = (psf - want).abs().max().item<double>();
    const double from_centre = (psf - at_centre).abs().sum().item<double>();
    std::printf("[rank %d, %s, psf per tile %d] largest difference from the model at the tile centre %.3g; "
                "L1 from the field centre's %.3g\n", comm_->rank(), t.describe().c_str(), per_tile, error, from_centre);
    EXPECT_LT(error, 1e-6);
    if (per_tile) EXPECT_GT(from_centre, 1e-4);
    if (!per_tile) EXPECT_EQ(from_centre, 0.0);
    ASSERT_TRUE(on_all_ranks(*comm_, !HasFailure()));
  }
}

TEST_F(TiledTraining, GradientsAreTheWholeFields) {
  const auto grids = grids_for(comm_->size());
  if (grids.empty()) GTEST_SKIP() << "tile grids are tested on 2 to 4 ranks";
  config_.init = Init::kRandom;
  config_.validation.exposures = 0;
  mpi::LocalCommunicator local;
  jobs::LoadedStack whole = jobs::load_for_fit(manifest_, config_.validation, local);
  Trainer reference(config_, whole.stack, local, torch::kCPU);
  reference.compute_gradients();
  auto all = reference.encoder()->named_parameters();
  for (const mpi::TileGrid& grid : grids) {
    jobs::LoadedStack loaded =
        jobs::load_for_fit(manifest_, config_.validation, *comm_, 0, jobs::TileRequest{grid, 3});
    Trainer trainer(config_, loaded.stack, *comm_, torch::kCPU, loaded.tiles.get());
    trainer.compute_gradients();
    const auto& ids = loaded.stack.exposure_ids;
    torch::Tensor index = torch::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()));
    double worst = 0;
    std::string worst_name;
    for (const auto& item : trainer.encoder()->named_parameters()) {
      torch::Tensor expected = all[item.key()].grad();
      if (item.key() != "pointwise_bias") expected = expected.index_select(0, index);
      const double rel = ((item.value().grad() - expected).norm() / expected.norm().clamp_min(1e-30)).item<double>();
      if (rel > worst) worst = rel, worst_name = item.key();
    }
    std::printf("[P=%d tiles %s rank %d] worst relative gradient difference %.3g (%s)\n", comm_->size(),
                grid.text().c_str(), comm_->rank(), worst, worst_name.c_str());
    EXPECT_LT(worst, 1e-4) << "parameter " << worst_name << " on rank " << comm_->rank();
    ASSERT_TRUE(on_all_ranks(*comm_, worst < 1e-4));
  }
}

TEST_F(TiledTraining, RichardsonLucyAndImageMmOnTilesAreTheWholeFields) {
  const auto grids = grids_for(comm_->size());
  if (grids.empty()) GTEST_SKIP() << "tile grids are tested on 2 to 4 ranks";
  ImageMmConfig mm;
  RichardsonLucyConfig rl;
  mm.iterations = rl.iterations = 20;
  rl.validation.every = mm.validation.every = 4;
  rl.validation.exposures = mm.validation.exposures = 2;
  const auto restore = [&](mpi::Communicator& comm, const mpi::TileGrid& grid, bool image_mm_method) {
    return testing::held_out_restoration(manifest_, comm, jobs::TileRequest{grid, 0}, image_mm_method, rl, mm);
  };
  for (bool image_mm_method : {false, true}) {
    std::pair<torch::Tensor, std::vector<double>> whole;
    if (comm_->rank() == 0) {
      mpi::LocalCommunicator local;
      whole = restore(local, mpi::TileGrid{}, image_mm_method);
    }
    for (const mpi::TileGrid& grid : grids) {
      const auto [latent, losses] = restore(*comm_, grid, image_mm_method);
      bool ok = true;
      if (comm_->rank() == 0) {
        const auto& [expected, expected_losses] = whole;
        const double diff = ((latent - expected).norm() / expected.norm()).item<double>();
        double worst = 0;
        for (std::size_t k = 0; k < losses.size() && k < expected_losses.size(); ++k) {
          worst = std::max(worst, std::abs(losses[k] - expected_losses[k]) / expected_losses[k]);
        }
        std::printf("[P=%d tiles %s] %s: latent relative L2 difference %.3g, held-out losses %.3g\n", comm_->size(),
                    grid.text().c_str(), image_mm_method ? "ImageMM" : "Richardson-Lucy", diff, worst);
        EXPECT_LT(diff, 1e-5);
        EXPECT_EQ(losses.size(), 6u);  // 0, 4, ..., 20
        EXPECT_LT(worst, 1e-5);
        ok = !HasFailure();
      }
      ASSERT_TRUE(on_all_ranks(*comm_, ok)) << "tiles " << grid.text();
    }
  }
}

// NCCL's halo exchange (device buffers, ncclSend/ncclRecv) on one GPU per rank: the same frames as
// MPI on the host, and training on tiles on GPUs as on CPUs. Skipped without a GPU for every rank.
TEST_F(TiledTraining, NcclOnGpusMatchesMpiOnCpus) {
  const auto grids = grids_for(comm_->size());
  int missing = !grids.empty() && torch::cuda::is_available() && mpi::nccl_available() &&
                        torch::cuda::device_count() >= static_cast<std::int64_t>(comm_->size())
                    ? 0
                    : 1;
  comm_->all_reduce_max(&missing, 1);
  if (missing) GTEST_SKIP() << "needs a GPU per rank (one node), an NCCL build and 2 to 4 ranks";
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  const int device = static_cast<int>(testing::g_mpi_env->local_rank() % torch::cuda::device_count());
  auto nccl = testing::g_mpi_env->make_communicator(mpi::Backend::kNccl, device);
  const torch::Device cuda(torch::kCUDA, static_cast<c10::DeviceIndex>(device));
  const mpi::TileGrid grid = grids.front();
  config_.init = Init::kRandom;
  const std::int64_t halo = 3;
  const auto layout = mpi::RankLayout::make(grid, comm_->size(), 23, 29, halo);
  mpi::TileRanks on_gpu = mpi::TileRanks::make(layout, *nccl, 23, 29, halo);
  mpi::TileRanks on_cpu = mpi::TileRanks::make(layout, *comm_, 23, 29, halo);
  const torch::Tensor field = seeded({23, 29}, 7);
  const mpi::TileGeometry& t = on_cpu.tile;
  const torch::Tensor x = field.narrow(0, t.y0, t.height()).narrow(1, t.x0, t.width()).contiguous();
  const torch::Tensor frame_gpu = mpi::halo_exchange(x.to(cuda), halo, on_gpu.neighbours, *on_gpu.exposure_group);
  const torch::Tensor frame_cpu = mpi::halo_exchange(x, halo, on_cpu.neighbours, *on_cpu.exposure_group);
  const double frame_error = (frame_gpu.cpu() - frame_cpu).abs().max().item<double>();
  EXPECT_EQ(frame_error, 0.0);

  const std::int64_t encoder_halo = kernel_halo(config_.kernel_sizes);
  jobs::LoadedStack gpu_stack =
      jobs::load_for_fit(manifest_, config_.validation, *nccl, 0, jobs::TileRequest{grid, encoder_halo});
  gpu_stack.stack.to_for_training(cuda);
  gpu_stack.held_out.to_for_training(cuda);
  Trainer gpu_trainer(config_, gpu_stack.stack, *nccl, cuda, gpu_stack.tiles.get());
  gpu_trainer.validate_on(gpu_stack.held_out);
  gpu_trainer.train();
  const torch::Tensor gpu_latent = gpu_trainer.latent();
  const Run cpu = train(*comm_, grid);
  double diff = 0;  // the whole field is on rank 0
  if (comm_->rank() == 0) diff = ((gpu_latent - cpu.latent).norm() / cpu.latent.norm()).item<double>();
  if (comm_->rank() == 0) {
    std::printf("[P=%d tiles %s] NCCL on CUDA vs MPI on CPU: frame error %.3g, latent relative L2 %.3g, halo bytes "
                "through NCCL %zu\n", comm_->size(), grid.text().c_str(), frame_error, diff,
                gpu_stack.tiles->exposure_group->stats().bytes_exchanged);
  }
  EXPECT_LT(diff, 1e-3);
  ASSERT_TRUE(on_all_ranks(*comm_, !HasFailure()));
}

}  // namespace
}  // namespace astroclear
