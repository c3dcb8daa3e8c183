// load_stack: the validation order that keeps every rank in step (STYLE.md: errors).
#include "jobs/stack_loader.hpp"

#include <spdlog/spdlog.h>

#include <sstream>

#include "io/checksum.hpp"
#include "io/exposure_reader.hpp"
#include "jobs/tensor_image.hpp"
#include "common/error.hpp"
#include "mpi/partition.hpp"

namespace astroclear::jobs {

LoadedStack load_stack(const std::string& manifest, mpi::Communicator& comm) {
  LoadedStack loaded;
  StackPlan& plan = loaded.plan;
  comm.collectively([&] {
    plan.spec = io::load_manifest(manifest);
    const auto& exposures = plan.spec.exposures;
    if (exposures.size() < 2) {
      throw Error(manifest + ": " + std::to_string(exposures.size()) +
                  " exposure(s); astroclear needs at least 2 exposures of the field");
    }
    for (std::size_t t = 0; t < exposures.size(); ++t) {
      const auto [h, w] = io::read_exposure_shape(exposures[t], plan.spec);
      if (t == 0) {
        plan.height = h;
        plan.width = w;
      } else if (h != plan.height || w != plan.width) {
        throw Error(exposures[t].label() + ": " + io::shape_text(h, w) + " pixels, but " + exposures[0].label() +
                    " is " + io::shape_text(plan.height, plan.width) + "; all exposures must be co-registered on one grid");
      }
      plan.pixels.push_back(h * w);
    }
    plan.owners = mpi::partition_exposures(plan.pixels, comm.size());
  });
  if (comm.rank() == 0) spdlog::info("partition: {}", mpi::describe_partition(plan.owners, plan.pixels));

  LocalStack& stack = loaded.stack;
  stack.exposure_ids = plan.owners[comm.rank()];
  stack.total_exposures = static_cast<int>(plan.spec.exposures.size());
  std::string local_checksums;
  comm.collectively([&] {
    std::vector<torch::Tensor> images, sigmas, good;
    for (int t : stack.exposure_ids) {
      io::ExposureData data = io::read_exposure(plan.spec.exposures[t], plan.spec);
      io::Checksum sum;
      sum.add(data.image.pixels);
      sum.add(data.sigma.pixels);
      sum.add(data.good);
      sum.add(data.psf.pixels);
      local_checksums += std::to_string(sum.value()) + " ";
      for (const auto& warning : data.warnings) spdlog::warn("{}", warning);
      images.push_back(to_tensor(data.image));
      sigmas.push_back(to_tensor(data.sigma));
      good.push_back(torch::from_blob(data.good.data(), {plan.height, plan.width}, torch::kUInt8).to(torch::kFloat32));
      stack.psfs.push_back(to_tensor(data.psf));
      if (t == 0) loaded.first_header = data.image_header;
    }
    stack.images = torch::stack(images);
    stack.sigmas = torch::stack(sigmas);
    stack.good = torch::stack(good);
  });
  for (int r = 0; r < comm.size(); ++r) {
    std::istringstream owned(comm.broadcast_string(local_checksums, r));
    for (std::uint64_t value; owned >> value;) loaded.checksums.push_back(value);
  }
  return loaded;
}

}  // namespace astroclear::jobs
