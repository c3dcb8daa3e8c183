// halo_exchange: two-phase forward exchange and its adjoint (Note [halo exchange]).
#include "mpi/halo_exchange.hpp"

#include "common/error.hpp"

namespace astroclear::mpi {
namespace {

/// Sends `out` (contiguous copy made here) to `destination` while receiving into a tensor shaped
/// like `shape_of` from `source`; returns what arrived (undefined when source is -1).
torch::Tensor exchange(const torch::Tensor& out, int destination, const torch::Tensor& shape_of, int source,
                       Communicator& comm) {
  torch::Tensor send = out.contiguous();
  torch::Tensor receive = source >= 0 ? torch::empty_like(shape_of, torch::MemoryFormat::Contiguous) : torch::Tensor();
  const bool on_device = send.is_cuda() && comm.supports(MemorySpace::kCuda);
  torch::Tensor send_buffer = send.is_cuda() && !on_device ? send.cpu() : send;
  torch::Tensor receive_buffer =
      receive.defined() && receive.is_cuda() && !on_device ? torch::empty(receive.sizes()) : receive;
  comm.exchange(destination >= 0 ? send_buffer.data_ptr<float>() : nullptr,
                static_cast<std::size_t>(send_buffer.numel()), destination,
                receive_buffer.defined() ? receive_buffer.data_ptr<float>() : nullptr,
                receive_buffer.defined() ? static_cast<std::size_t>(receive_buffer.numel()) : 0, source,
                on_device ? MemorySpace::kCuda : MemorySpace::kHost);
  if (receive.defined() && !receive.is_same(receive_buffer)) receive.copy_(receive_buffer);
  return receive;
}

/// The frame of x with its ring filled (forward), for frames f (h + 2g, w + 2g).
void fill_ring(torch::Tensor& f, std::int64_t g, const Neighbours& n, Communicator& comm) {
  const std::int64_t h = f.size(0) - 2 * g, w = f.size(1) - 2 * g;
  torch::Tensor middle = f.narrow(1, g, w);  // the columns of the tile
  // Rows: the top g rows of the tile go up while the bottom neighbour's arrive below, and back.
  if (torch::Tensor in = exchange(middle.narrow(0, g, g), n.up, middle.narrow(0, h + g, g), n.down, comm); in.defined())
    middle.narrow(0, h + g, g).copy_(in);
  if (torch::Tensor in = exchange(middle.narrow(0, h, g), n.down, middle.narrow(0, 0, g), n.up, comm); in.defined())
    middle.narrow(0, 0, g).copy_(in);
  // Columns over the full frame height: the corners come with them.
  if (torch::Tensor in = exchange(f.narrow(1, g, g), n.left, f.narrow(1, w + g, g), n.right, comm); in.defined())
    f.narrow(1, w + g, g).copy_(in);
  if (torch::Tensor in = exchange(f.narrow(1, w, g), n.right, f.narrow(1, 0, g), n.left, comm); in.defined())
    f.narrow(1, 0, g).copy_(in);
}

/// The adjoint of fill_ring on a gradient frame d: the ring's gradient sent back and added.
void return_ring(torch::Tensor& d, std::int64_t g, const Neighbours& n, Communicator& comm) {
  const std::int64_t h = d.size(0) - 2 * g, w = d.size(1) - 2 * g;
  if (torch::Tensor in = exchange(d.narrow(1, 0, g), n.left, d.narrow(1, w, g), n.right, comm); in.defined())
    d.narrow(1, w, g).add_(in);
  if (torch::Tensor in = exchange(d.narrow(1, w + g, g), n.right, d.narrow(1, g, g), n.left, comm); in.defined())
    d.narrow(1, g, g).add_(in);
  torch::Tensor middle = d.narrow(1, g, w);
  if (torch::Tensor in = exchange(middle.narrow(0, 0, g), n.up, middle.narrow(0, h, g), n.down, comm); in.defined())
    middle.narrow(0, h, g).add_(in);
  if (torch::Tensor in = exchange(middle.narrow(0, h + g, g), n.down, middle.narrow(0, g, g), n.up, comm); in.defined())
    middle.narrow(0, g, g).add_(in);
}

struct HaloExchange : public torch::autograd::Function<HaloExchange> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, std::int64_t halo,
                               std::vector<std::int64_t> ranks, std::int64_t comm_address) {
    ctx->saved_data["halo"] = halo;
    ctx->saved_data["ranks"] = ranks;
    ctx->saved_data["comm"] = comm_address;
    const Neighbours n{static_cast<int>(ranks[0]), static_cast<int>(ranks[1]), static_cast<int>(ranks[2]),
                       static_cast<int>(ranks[3])};
    torch::Tensor frame = torch::constant_pad_nd(x.detach(), {halo, halo, halo, halo});
    fill_ring(frame, halo, n, *reinterpret_cast<Communicator*>(comm_address));
    return frame;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const std::int64_t g = ctx->saved_data["halo"].toInt();
    const auto ranks = ctx->saved_data["ranks"].toIntVector();
    const Neighbours n{static_cast<int>(ranks[0]), static_cast<int>(ranks[1]), static_cast<int>(ranks[2]),
                       static_cast<int>(ranks[3])};
    return {halo_return(grads[0], g, n, *reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt())),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor halo_return(const torch::Tensor& frame, std::int64_t halo, const Neighbours& neighbours,
                          Communicator& comm) {
  if (halo == 0) return frame;
  torch::Tensor d = frame.detach().contiguous().clone();
  return_ring(d, halo, neighbours, comm);
  const std::int64_t h = d.size(0) - 2 * halo, w = d.size(1) - 2 * halo;
  return d.narrow(0, halo, h).narrow(1, halo, w).contiguous();
}

torch::Tensor halo_exchange(const torch::Tensor& x, std::int64_t halo, const Neighbours& neighbours, Communicator& comm) {
  if (x.dim() != 2 || x.scalar_type() != torch::kFloat32) throw Error("halo_exchange: a 2-D float32 tile is expected");
  if (halo > x.size(0) || halo > x.size(1)) {
    throw Error("halo_exchange: a tile of " + std::to_string(x.size(0)) + " x " + std::to_string(x.size(1)) +
                " px is smaller than the halo of " + std::to_string(halo));
  }
  if (halo == 0) return x;
  const std::vector<std::int64_t> ranks{neighbours.up, neighbours.down, neighbours.left, neighbours.right};
  return HaloExchange::apply(x, halo, ranks, reinterpret_cast<std::int64_t>(&comm));
}

}  // namespace astroclear::mpi
