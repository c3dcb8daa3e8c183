// Tests of the method's pieces: Huber loss, PSF decoders, encoder, CPU kernels.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mpi/communicator.hpp"
#include "common/error.hpp"
#include "src/cpu_kernels.hpp"
#include "src/depthwise_conv.hpp"
#include "src/pointwise_sum.hpp"
#include "src/encoder.hpp"
#include "src/huber_loss.hpp"
#include "src/psf_decoder.hpp"

namespace astroclear {
namespace {

TEST(HuberLoss, MatchesHandComputedValues) {
  // delta = 1: r = 0.5 -> 0.125; r = -2 -> 1.5; r = 3 -> 2.5; r = 1 -> 0.5 (both branches agree).
  torch::Tensor r = torch::tensor({0.5, -2.0, 3.0, 1.0}, torch::kFloat64);
  torch::Tensor h = huber(r, 1.0);
  EXPECT_DOUBLE_EQ(h[0].item<double>(), 0.125);
  EXPECT_DOUBLE_EQ(h[1].item<double>(), 1.5);
  EXPECT_DOUBLE_EQ(h[2].item<double>(), 2.5);
  EXPECT_DOUBLE_EQ(h[3].item<double>(), 0.5);
  // delta = 2, sigma = 2: y/sigma - yhat/sigma = (10 - 4)/2 = 3 -> 2 * (3 - 1) = 4.
  torch::Tensor y = torch::tensor({10.0}), yhat = torch::tensor({4.0}), sigma = torch::tensor({2.0});
  EXPECT_FLOAT_EQ(masked_huber_sum(yhat, y, sigma, torch::ones({1}), 2.0).item<float>(), 4.0f);
}

TEST(HuberLoss, FoldedFormEqualsPlainForm) {
  torch::manual_seed(1);
  torch::Tensor y = torch::randn({3, 20, 30}) * 3, yhat = torch::randn({3, 20, 30}) * 3;
  torch::Tensor sigma = torch::rand({3, 20, 30}) + 0.5, good = (torch::rand({3, 20, 30}) > 0.3).to(torch::kFloat32);
  const double plain = masked_huber_sum(yhat, y, sigma, good, 1.3).item<double>();
  const double folded = HuberTerms::make(y * good, torch::where(good > 0, sigma, torch::ones_like(sigma)), good, 1.3)
                            .sum(yhat).item<double>();
  EXPECT_NEAR(folded, plain, 1e-4 * std::abs(plain));
}

TEST(HuberLoss, MaskedPixelsGetExactlyZeroGradient) {
  torch::manual_seed(2);
  torch::Tensor y = torch::randn({2, 16, 16}) * 5, sigma = torch::rand({2, 16, 16}) + 0.5;
  torch::Tensor good = (torch::rand({2, 16, 16}) > 0.5).to(torch::kFloat32);
  torch::Tensor yhat = (torch::randn({2, 16, 16}) * 5).requires_grad_(true);
  HuberTerms::make(y * good, torch::where(good > 0, sigma, torch::ones_like(sigma)), good, 1.0).sum(yhat).backward();
  torch::Tensor masked_grad = yhat.grad().masked_select(good < 0.5);
  EXPECT_GT(masked_grad.numel(), 100);
  EXPECT_EQ(masked_grad.abs().max().item<float>(), 0.0f);
  EXPECT_GT(yhat.grad().masked_select(good > 0.5).abs().max().item<float>(), 0.0f);
}

struct DecoderCase {
  std::int64_t height, width, psf;
};

class DecodersAgree : public ::testing::TestWithParam<DecoderCase> {};

TEST_P(DecodersAgree, FftEqualsDirect) {
  const auto c = GetParam();
  torch::manual_seed(c.psf * 31 + c.height);
  std::vector<torch::Tensor> psfs;
  for (int t = 0; t < 3; ++t) {
    const std::int64_t k = std::max<std::int64_t>(1, c.psf - 2 * t);  // sizes differ per exposure
    torch::Tensor p = torch::rand({k, k});
    psfs.push_back(p / p.sum());
  }
  torch::Tensor latent = torch::rand({c.height, c.width}) * 10;
  PsfDecoder direct(psfs, c.height, c.width, PsfDecoder::Mode::kDirect, torch::kCPU);
  PsfDecoder fft(psfs, c.height, c.width, PsfDecoder::Mode::kFft, torch::kCPU);
  torch::Tensor a = direct.forward(latent), b = fft.forward(latent);
  ASSERT_EQ(a.sizes(), b.sizes());
  const double rel = ((a - b).norm() / a.norm()).item<double>();
  EXPECT_LT(rel, 1e-5) << "PSF " << c.psf << " on " << c.height << "x" << c.width;
  // The adjoint: <D x, v> = <x, D^T v> for both modes, and the two modes' adjoints agree.
  torch::Tensor v = torch::randn({3, c.height, c.width});
  torch::Tensor adjoint_direct = direct.adjoint_sum(v), adjoint_fft = fft.adjoint_sum(v);
  const double lhs = (b.to(torch::kFloat64) * v).sum().item<double>();
  const double rhs = (latent.to(torch::kFloat64) * adjoint_fft).sum().item<double>();
  EXPECT_NEAR(lhs, rhs, 1e-5 * std::abs(lhs) + 1e-3);
  EXPECT_LT(((adjoint_direct - adjoint_fft).norm() / adjoint_direct.norm()).item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Sizes, DecodersAgree,
                         ::testing::Values(DecoderCase{64, 64, 1}, DecoderCase{64, 64, 3}, DecoderCase{96, 96, 41},
                                           DecoderCase{50, 83, 3}, DecoderCase{70, 45, 41}, DecoderCase{41, 41, 41}));

TEST(PsfDecoder, ConvolvesNotCorrelates) {
  // An asymmetric PSF (mass one pixel right of centre) must move a point source right.
  torch::Tensor psf = torch::zeros({3, 3});
  psf[1][2] = 1.0;
  torch::Tensor latent = torch::zeros({9, 9});
  latent[4][4] = 1.0;
  for (auto mode : {PsfDecoder::Mode::kDirect, PsfDecoder::Mode::kFft}) {
    torch::Tensor out = PsfDecoder({psf}, 9, 9, mode, torch::kCPU).forward(latent)[0];
    EXPECT_NEAR(out[4][5].item<float>(), 1.0f, 1e-5);
    EXPECT_NEAR(out.sum().item<float>(), 1.0f, 1e-5);
  }
}

// Note [chunked decoder loss]: the FFT decoder's loss and gradient, computed a few exposures at a
// time, equal those autograd takes through the decoder and the loss (7 exposures: two chunks,
// the second partial; masked pixels; residuals on both sides of delta).
TEST(PsfDecoder, ChunkedLossEqualsAutogradsLossAndGradient) {
  torch::manual_seed(5);
  const std::int64_t n = 7, h = 45, w = 38;
  std::vector<torch::Tensor> psfs;
  for (std::int64_t t = 0; t < n; ++t) {
    torch::Tensor p = torch::rand({2 * (t % 3) + 3, 2 * (t % 4) + 5});
    psfs.push_back(p / p.sum());
  }
  const torch::Tensor good = (torch::rand({n, h, w}) > 0.1).to(torch::kFloat32);
  const torch::Tensor y = (torch::randn({n, h, w}) * 3 + 4) * good;
  const torch::Tensor sigma = torch::rand({n, h, w}) + 0.5;
  const HuberTerms terms = HuberTerms::make(y, sigma, good, 1.2);
  const PsfDecoder decoder(psfs, h, w, PsfDecoder::Mode::kFft, torch::kCPU);
  const torch::Tensor latent = (torch::rand({h, w}) * 5).requires_grad_(true);

  const torch::Tensor expected = terms.sum(decoder.forward(latent));
  const torch::Tensor expected_grad = torch::autograd::grad({expected}, {latent})[0];
  const torch::Tensor chunked = decoder.huber_sum(latent, terms);
  const torch::Tensor chunked_grad = torch::autograd::grad({chunked * 3.0}, {latent})[0] / 3.0;
  EXPECT_NEAR(chunked.item<double>(), expected.item<double>(), 1e-6 * expected.item<double>());
  EXPECT_LT(((chunked_grad - expected_grad).norm() / expected_grad.norm()).item<double>(), 1e-6);
  const auto residual = (decoder.forward(latent) * terms.weight - terms.target).abs();
  EXPECT_GT((residual > 1.2).sum().item<double>(), 100) << "the linear part of the Huber function must be exercised";
  torch::NoGradGuard no_grad;
  EXPECT_NEAR(decoder.huber_sum(latent, terms).item<double>(), expected.item<double>(), 1e-6 * expected.item<double>());
}

TEST(PsfDecoder, FastFftSizes) {
  EXPECT_EQ(fast_fft_size(127), 128);
  EXPECT_EQ(fast_fft_size(4240), 4320);  // 2^5 3^3 5
  EXPECT_EQ(fast_fft_size(97), 100);
}

TEST(Encoder, LatentIsNeverNegative) {
  mpi::LocalCommunicator comm;
  TrainConfig config;
  config.init = Init::kRandom;
  for (std::uint64_t seed : {0, 1, 2, 3}) {
    config.seed = seed;
    Encoder encoder(std::vector<int>{0, 1, 2, 3}, 4, config);
    torch::manual_seed(seed);
    torch::Tensor x = encoder->forward(torch::randn({4, 40, 50}) * 10 - 5, comm);
    EXPECT_EQ(x.sizes(), (std::vector<std::int64_t>{40, 50}));
    EXPECT_GE(x.min().item<float>(), 0.0f);
    EXPECT_GT(x.max().item<float>(), 0.0f) << "a latent of all zeros would make this test vacuous";
  }
}

TEST(Encoder, IdentityInitialisationStartsAtTheWeightedMean) {
  mpi::LocalCommunicator comm;
  TrainConfig config;
  torch::Tensor images = torch::rand({3, 32, 32}) * 4 + 1;  // positive: ReLU keeps it
  Encoder encoder(std::vector<int>{0, 1, 2}, 3, config);
  torch::Tensor weights = torch::tensor({1.0, 2.0, 1.0}, torch::kFloat64);
  encoder->initialise_from(images, weights, comm);
  torch::Tensor expected = (images * torch::tensor({0.25f, 0.5f, 0.25f}).view({3, 1, 1})).sum(0);
  torch::NoGradGuard no_grad;
  torch::Tensor x = encoder->forward(images, comm);
  // Interior pixels (the perturbation of the delta kernels is 1% of the mean at most).
  const double rel = ((x - expected).narrow(0, 4, 24).narrow(1, 4, 24).norm() /
                      expected.narrow(0, 4, 24).narrow(1, 4, 24).norm()).item<double>();
  EXPECT_LT(rel, 0.02);
}

TEST(Encoder, ParametersDependOnTheExposureNotOnTheSplit) {
  TrainConfig config;
  config.init = Init::kRandom;
  Encoder whole(std::vector<int>{0, 1, 2, 3, 4}, 5, config);
  Encoder part(std::vector<int>{3, 4}, 5, config);
  for (std::size_t b = 0; b < config.kernel_sizes.size(); ++b) {
    EXPECT_TRUE(torch::equal(whole->depthwise_weight[b].narrow(0, 3, 2), part->depthwise_weight[b]));
  }
  EXPECT_TRUE(torch::equal(whole->pointwise_weight.narrow(0, 3, 2), part->pointwise_weight));
  EXPECT_TRUE(torch::equal(whole->pointwise_bias, part->pointwise_bias));
}

TEST(DepthwiseConv, FastCpuKernelsEqualLibTorchs) {
  // Notes [depthwise forward] and [depthwise weight gradient]: the hand-written forward (with and
  // without autograd) and weight and bias gradients against LibTorch's own convolution, for every
  // branch size and a non-square image whose rows end in a partial block of eight.
  const ScopedFastCpuKernels ours_on(true);
  torch::manual_seed(3);
  for (std::int64_t k : {1, 3, 5, 7}) {
    torch::Tensor padded = torch::randn({1, 4, 37 + k - 1, 53 + k - 1});
    torch::Tensor weight = torch::randn({4, 1, k, k}, torch::requires_grad());
    torch::Tensor bias = torch::randn({4}, torch::requires_grad());
    torch::Tensor upstream = torch::randn({1, 4, 37, 53});
    torch::Tensor ours = depthwise_conv2d(padded, weight, bias);
    (ours * upstream).sum().backward();
    const torch::Tensor grad_weight = weight.grad().clone(), grad_bias = bias.grad().clone();
    weight.mutable_grad().zero_();
    bias.mutable_grad().zero_();
    torch::Tensor theirs = torch::conv2d(padded, weight, bias, torch::IntArrayRef{1, 1}, torch::IntArrayRef{0, 0},
                                         torch::IntArrayRef{1, 1}, 4);
    (theirs * upstream).sum().backward();
    EXPECT_LT(((ours - theirs).norm() / theirs.norm()).item<double>(), 1e-6) << "k = " << k;
    {
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(depthwise_conv2d(padded, weight, bias), ours.detach())) << "k = " << k;
    }
    EXPECT_LT(((grad_weight - weight.grad()).norm() / weight.grad().norm()).item<double>(), 1e-5) << "k = " << k;
    EXPECT_LT(((grad_bias - bias.grad()).norm() / bias.grad().norm()).item<double>(), 1e-5) << "k = " << k;
  }
}

// Note [re-padded inputs]: padding again in the backward pass gives the gradients autograd gives
// through the pad and the convolution, bit for bit (the same LibTorch operations).
TEST(DepthwiseConv, RePaddedBackwardEqualsAutogradsThroughThePad) {
  torch::manual_seed(4);
  for (std::int64_t k : {1, 3, 7}) {
    const torch::Tensor images = torch::randn({1, 3, 29, 41});
    const torch::Tensor upstream = torch::randn({1, 3, 29, 41});
    torch::Tensor weight = torch::randn({3, 1, k, k}, torch::requires_grad());
    torch::Tensor bias = torch::randn({3}, torch::requires_grad());
    const torch::Tensor ours = reflect_padded_depthwise_conv2d(images, weight, bias);
    const auto ours_grads = torch::autograd::grad({(ours * upstream).sum()}, {weight, bias});
    const torch::Tensor theirs = torch::conv2d(reflect_pad(images, k / 2), weight, bias, torch::IntArrayRef{1, 1},
                                               torch::IntArrayRef{0, 0}, torch::IntArrayRef{1, 1}, 3);
    const auto their_grads = torch::autograd::grad({(theirs * upstream).sum()}, {weight, bias});
    EXPECT_TRUE(torch::equal(ours, theirs)) << "k = " << k;
    EXPECT_TRUE(torch::equal(ours_grads[0], their_grads[0])) << "k = " << k;
    EXPECT_TRUE(torch::equal(ours_grads[1], their_grads[1])) << "k = " << k;
  }
}

TEST(PointwiseSum, FastCpuGradientsEqualLibTorchs) {
  // Note [pointwise sum]: the forward and both gradients against LibTorch's 1 x 1 convolution,
  // on an image of more pixels than one summation block and not a multiple of it.
  const ScopedFastCpuKernels ours_on(true);
  torch::manual_seed(4);
  torch::Tensor features = torch::randn({1, 5, 131, 129}, torch::requires_grad());
  torch::Tensor weight = torch::randn({5}, torch::requires_grad());
  torch::Tensor upstream = torch::randn({1, 1, 131, 129});
  torch::Tensor ours = pointwise_sum(features, weight);
  ours.backward(upstream);
  const torch::Tensor grad_features = features.grad().clone(), grad_weight = weight.grad().clone();
  features.mutable_grad().zero_();
  weight.mutable_grad().zero_();
  torch::Tensor theirs = torch::conv2d(features, weight.view({1, 5, 1, 1}));
  theirs.backward(upstream);
  EXPECT_LT(((ours - theirs).norm() / theirs.norm()).item<double>(), 1e-6);
  EXPECT_LT(((grad_features - features.grad()).norm() / features.grad().norm()).item<double>(), 1e-6);
  EXPECT_LT(((grad_weight - weight.grad()).norm() / weight.grad().norm()).item<double>(), 1e-5);
  // The weight gradient is summed in fixed blocks in a fixed order: the same bits on 1 and 3 threads.
  const int threads = torch::get_num_threads();
  std::vector<torch::Tensor> grads;
  for (int t : {1, 3}) {
    torch::set_num_threads(t);
    weight.mutable_grad().zero_();
    pointwise_sum(features, weight).backward(upstream);
    grads.push_back(weight.grad().clone());
  }
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(grads[0], grads[1]));
}

}  // namespace
}  // namespace astroclear
