// LocalStack: the exposures one rank owns, as tensors in normalised flux units.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "mpi/communicator.hpp"

namespace astroclear {

/// The exposures this rank owns. Built calibrated (common photometric scale), then normalised by
/// normalise(): fluxes in units of a typical noise level so that the defaults work at any scale.
struct LocalStack {
  std::vector<int> exposure_ids;  ///< manifest indices, ascending
  int total_exposures = 0;        ///< in this set (the fit's, or the held-out), over all ranks
  torch::Tensor images;  ///< (n, H, W), 0 where not good
  torch::Tensor sigmas;  ///< (n, H, W), 1 where not good
  torch::Tensor good;    ///< (n, H, W), 1 = good pixel
  std::vector<torch::Tensor> psfs;  ///< one odd 2-D kernel per exposure, sum 1
  double flux_unit = 1.0;           ///< calibrated flux = normalised flux * flux_unit
  double good_pixels = 0.0;         ///< over all ranks (N of the loss)

  std::int64_t local_count() const { return static_cast<std::int64_t>(exposure_ids.size()); }
  std::int64_t height() const { return images.size(1); }
  std::int64_t width() const { return images.size(2); }

  /// Median sigma over each of this rank's exposures' good pixels, in exposure_ids order. With
  /// `exposure_group` (tiles: the ranks holding the same exposures' other tiles) the median over
  /// the whole field (Note [field median]); collective over it then.
  std::vector<double> median_sigmas(mpi::Communicator* exposure_group = nullptr) const;
  /// Collective. Sets flux_unit to the median over all exposures of each exposure's median good
  /// sigma, divides images and sigmas by it, and sums the good-pixel count over ranks. On tiles,
  /// `tile_group` (the ranks of this tile, which hold every exposure once) and `exposure_group`.
  void normalise(mpi::Communicator& comm, mpi::Communicator* tile_group = nullptr,
                 mpi::Communicator* exposure_group = nullptr);
  /// Collective. The same with a given flux unit (held-out exposures take the fit's).
  void normalise_with(double unit, mpi::Communicator& comm);
  /// Moves every tensor to `device`.
  void to(torch::Device device);
  /// Moves the images and PSFs to `device` and leaves the sigmas and mask where they are: all that
  /// a Trainer needs on the device (Note [noise planes on the host] in huber_loss.hpp).
  void to_for_training(torch::Device device);
};

}  // namespace astroclear
