// Conversions between io::Image (plain pixels) and tensors, for the commands that join io/ and src/.
#pragma once

#include <torch/torch.h>

#include "io/image.hpp"

namespace astroclear::jobs {

inline torch::Tensor to_tensor(const io::Image& image) {
  return torch::from_blob(const_cast<float*>(image.pixels.data()), {image.height, image.width}, torch::kFloat32)
      .clone();
}

inline io::Image to_image(const torch::Tensor& tensor) {
  torch::Tensor t = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  io::Image image(t.size(0), t.size(1));
  std::copy(t.data_ptr<float>(), t.data_ptr<float>() + t.numel(), image.pixels.begin());
  return image;
}

inline io::MaskImage to_mask(const torch::Tensor& tensor) {
  torch::Tensor t = tensor.to(torch::kCPU, torch::kInt32).contiguous();
  io::MaskImage mask{t.size(0), t.size(1), std::vector<std::int32_t>(t.numel())};
  std::copy(t.data_ptr<std::int32_t>(), t.data_ptr<std::int32_t>() + t.numel(), mask.pixels.begin());
  return mask;
}

}  // namespace astroclear::jobs
