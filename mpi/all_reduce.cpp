// AllReduceSum autograd function and the in-place tensor all-reduce.
#include "mpi/all_reduce.hpp"

#include <cstdint>

#include "common/error.hpp"

namespace astroclear::mpi {
namespace {

struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, int64_t comm_address) {
    ctx->saved_data["comm"] = comm_address;
    torch::Tensor y = x.detach().clone(torch::MemoryFormat::Contiguous);
    all_reduce_sum_(y, *reinterpret_cast<Communicator*>(comm_address));
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    torch::Tensor g = grads[0].contiguous().clone();
    all_reduce_sum_(g, *comm);
    return {g, torch::Tensor()};
  }
};

}  // namespace

void all_reduce_sum_(torch::Tensor& tensor, Communicator& comm) {
  if (tensor.scalar_type() != torch::kFloat32) throw Error("all_reduce_sum_: only float32 tensors are reduced");
  if (!tensor.is_contiguous()) throw Error("all_reduce_sum_: tensor must be contiguous");
  if (comm.size() == 1) return;
  const auto count = static_cast<std::size_t>(tensor.numel());
  if (!tensor.is_cuda()) {
    comm.all_reduce_sum(tensor.data_ptr<float>(), count, MemorySpace::kHost);
  } else if (comm.supports(MemorySpace::kCuda)) {
    comm.all_reduce_sum(tensor.data_ptr<float>(), count, MemorySpace::kCuda);
  } else {
    torch::Tensor host = tensor.cpu();
    comm.all_reduce_sum(host.data_ptr<float>(), count, MemorySpace::kHost);
    tensor.copy_(host);
  }
}

torch::Tensor all_reduce_sum(const torch::Tensor& x, Communicator& comm) {
  if (comm.size() == 1) return x;
  return AllReduceSum::apply(x, reinterpret_cast<int64_t>(&comm));
}

}  // namespace astroclear::mpi
