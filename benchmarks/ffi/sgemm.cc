// C = op(A) @ op(B) (float32, row-major) as an XLA FFI custom call, with OpenBLAS's sgemm
// (the scipy-openblas32 wheel, one thread per call) on XLA:CPU's own intra-op threads: the
// calling thread computes the first half of C's rows, a task on XLA's thread pool the
// rest (or the caller, if no pool thread has taken the task by then). With split=false,
// the whole product on the calling thread.
// Built and used by benchmarks/blas_ffi.py; not part of ae_jax.
#include <atomic>
#include <cstdint>
#include <thread>

#include "cblas.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

struct Gemm {
  bool trans_a, trans_b;
  int64_t m, n, k, lda, ldb;
  const float* a;
  const float* b;
  float* c;

  void Rows(int64_t first, int64_t end) const {  // rows [first, end) of C
    if (end <= first) return;
    const float* a_rows = trans_a ? a + first : a + first * lda;
    scipy_cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                      trans_b ? CblasTrans : CblasNoTrans, end - first, n, k, 1.0f, a_rows,
                      lda, b, ldb, 0.0f, c + first * n, n);
  }
};

// The second half's task: whoever claims it first runs it; freed by the last of the two.
struct Half {
  std::atomic<int> claimed{0};
  std::atomic<int> done{0};
  std::atomic<int> refs{2};
  void Release() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

const int kOneThread = (scipy_openblas_set_num_threads(1), 0);

}  // namespace

static ffi::Error Sgemm(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> a,
                        ffi::Buffer<ffi::F32> b, ffi::ResultBuffer<ffi::F32> c, bool trans_a,
                        bool trans_b, bool split) {
  (void)kOneThread;
  auto da = a.dimensions(), db = b.dimensions();
  if (da.size() != 2 || db.size() != 2) return ffi::Error::InvalidArgument("2-D operands only");
  Gemm g{trans_a, trans_b, trans_a ? da[1] : da[0], trans_b ? db[0] : db[1],
         trans_a ? da[0] : da[1], da[1], db[1], a.typed_data(), b.typed_data(),
         c->typed_data()};
  if (!split || pool.num_threads() < 2 || g.m < 32) {
    g.Rows(0, g.m);
    return ffi::Error::Success();
  }
  const int64_t half = (g.m / 2 + 7) / 8 * 8;
  auto* h = new Half();
  pool.Schedule([g, half, h] {
    if (h->claimed.exchange(1) == 0) {
      g.Rows(half, g.m);
      h->done.store(1, std::memory_order_release);
    }
    h->Release();
  });
  g.Rows(0, half);
  if (h->claimed.exchange(1) == 0) {
    g.Rows(half, g.m);  // no pool thread has taken it: do it here
  } else {
    while (h->done.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  }
  h->Release();
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(AeSgemm, Sgemm,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<bool>("trans_a")
                                  .Attr<bool>("trans_b")
                                  .Attr<bool>("split"));
