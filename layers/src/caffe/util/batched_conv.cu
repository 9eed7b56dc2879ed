#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "caffe/common.hpp"
#include "caffe/util/batched_conv.hpp"

// Layouts (row-major, as Caffe's blobs): per image, cols (K x P) with K = channels kh kw and
// P = col_h col_w; weight (M x K) for Convolution, (M x K) too for Deconvolution where M is its
// bottom's channels (Caffe stores a deconvolution's weight as (bottom channels, top channels,
// kh, kw)). cuBLAS is column-major, so a row-major product C = A B is asked for as C^T = B^T A^T
// on the same memory, as Caffe's caffe_gpu_gemm does.

namespace caffe {

BatchedConvOptions& batched_conv_options() {
  static BatchedConvOptions options = [] {
    const char* env = std::getenv("FASSST_GPU_TF32");
    BatchedConvOptions o;
    o.tf32 = env && std::strcmp(env, "1") == 0;
    o.workspace_bytes = kBatchedConvWorkspaceBytes;
    return o;
  }();
  return options;
}

namespace {

template <typename Dtype>
__global__ void batched_im2col_kernel(int n, ConvGeometry g, const Dtype* images, Dtype* cols) {
  CUDA_KERNEL_LOOP(index, n) { batched_im2col_element(index, g, images, cols); }
}

template <typename Dtype>
__global__ void batched_col2im_kernel(int n, ConvGeometry g, const Dtype* cols, Dtype* images) {
  CUDA_KERNEL_LOOP(index, n) { images[index] = batched_col2im_element(index, g, cols); }
}

// out (n / (channels spatial), channels, spatial) += bias[channel]
template <typename Dtype>
__global__ void add_bias_kernel(int n, int channels, int spatial, const Dtype* bias, Dtype* out) {
  CUDA_KERNEL_LOOP(index, n) { out[index] += bias[(index / spatial) % channels]; }
}

// out[j] += sum over b < parts of in[b count + j]: one thread per j, so the sum's order is
// fixed (deterministic, as Caffe's per-image accumulation is).
template <typename Dtype>
__global__ void sum_parts_kernel(int count, int parts, const Dtype* in, Dtype* out) {
  CUDA_KERNEL_LOOP(j, count) {
    Dtype sum = 0;
    for (int b = 0; b < parts; ++b) sum += in[static_cast<ptrdiff_t>(b) * count + j];
    out[j] += sum;
  }
}

// bias_diff[c] += the sum of diff (num, channels, spatial) over images and positions: one block
// per channel, its threads striding over the terms, then a shared-memory tree (deterministic).
const int kReduceThreads = 256;

template <typename Dtype>
__global__ void bias_grad_kernel(int num, int channels, int spatial, const Dtype* diff,
                                 Dtype* bias_diff) {
  __shared__ Dtype buf[kReduceThreads];
  const int c = blockIdx.x;
  Dtype sum = 0;
  for (int t = threadIdx.x; t < num * spatial; t += blockDim.x)
    sum += diff[(static_cast<ptrdiff_t>(t / spatial) * channels + c) * spatial + t % spatial];
  buf[threadIdx.x] = sum;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) buf[threadIdx.x] += buf[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) bias_diff[c] += buf[0];
}

// The chunk's column buffer: one per device, grown when a layer needs more, never shrunk.
void* Workspace(size_t bytes) {
  static std::mutex mutex;
  static std::map<int, std::pair<void*, size_t> > buffers;
  int device;
  CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  std::pair<void*, size_t>& b = buffers[device];
  if (b.second < bytes) {
    if (b.first) CUDA_CHECK(cudaFree(b.first));
    b.first = NULL;
    b.second = 0;
    CUDA_CHECK(cudaMalloc(&b.first, bytes));
    b.second = bytes;
  }
  return b.first;
}

// Images per chunk: as many as fit in the options' workspace at per_image values each, at
// least one, and few enough that a chunk's values are indexable by int (the kernels' index).
template <typename Dtype>
int ChunkImages(int num, size_t per_image) {
  if (per_image == 0) return num;
  const size_t fit = std::min(batched_conv_options().workspace_bytes / (per_image * sizeof(Dtype)),
                              static_cast<size_t>(INT_MAX) / per_image);
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(fit, num)));
}

template <typename Dtype>
Dtype* ChunkWorkspace(int chunk, size_t per_image) {
  return static_cast<Dtype*>(Workspace(static_cast<size_t>(chunk) * per_image * sizeof(Dtype)));
}

// C_b (m x n) = op(A_b) (m x k) op(B_b) (k x n) for b < batch, row-major as Caffe's blobs;
// op(X) = X as stored, or its transpose when trans_x (A stored k x m, B stored n x k); the A_b,
// B_b, C_b at the given strides (0: shared by the batch). In cuBLAS's column-major terms this
// is C^T (n x m) = op(B)^T (n x k) op(A)^T (k x m): a row-major matrix is its transpose there,
// so each operand is taken as stored, or transposed when it was not. (Checked against BLAS's
// column-major definition in numpy for all four cases.) Float may run on TF32 (the options).
template <typename Dtype>
void GemmBatched(bool trans_a, bool trans_b, int m, int n, int k, const Dtype* a,
                 long long stride_a, const Dtype* b, long long stride_b, Dtype* c,
                 long long stride_c, int batch) {
  const bool is_float = sizeof(Dtype) == sizeof(float);
  const cudaDataType type = is_float ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute =
      !is_float ? CUBLAS_COMPUTE_64F
                : batched_conv_options().tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const Dtype one = 1, zero = 0;
  CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      Caffe::cublas_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
      trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &one, b, type, trans_b ? k : n, stride_b, a,
      type, trans_a ? m : k, stride_a, &zero, c, type, n, stride_c, batch, compute,
      CUBLAS_GEMM_DEFAULT));
}

template <typename Dtype>
void AddBias(int num, int channels, int spatial, const Dtype* bias, Dtype* out) {
  const int n = num * channels * spatial;
  add_bias_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(n, channels, spatial,
                                                                        bias, out);
  CUDA_POST_KERNEL_CHECK;
}

bool Is1x1(const ConvGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 &&
         g.pad_h == 0 && g.pad_w == 0;
}

// Workspace values per image for its cols: none at 1x1 stride 1, where an image is its own
// cols (the same col_count() values apart, so a chunk's cols are always that far apart).
size_t ColsPerImage(const ConvGeometry& g) { return Is1x1(g) ? 0 : g.col_count(); }

// A chunk's cols: the images themselves at 1x1, else their im2col written to `workspace`.
template <typename Dtype>
const Dtype* ChunkCols(int images, const ConvGeometry& g, const Dtype* image, Dtype* workspace) {
  if (Is1x1(g)) return image;
  const int n = images * g.channels * g.col_h() * g.col_w();
  batched_im2col_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(n, g, image,
                                                                              workspace);
  CUDA_POST_KERNEL_CHECK;
  return workspace;
}

// What is computed from cols(image) (K x P per image), with one im2col per chunk for all of it:
//   out (num, filters, P) = weight (filters x K) cols(image)                  where out
//   weight_diff (filters x K) += sum over images of side_b (filters x P) cols(image_b)^T
//                                                                             where weight_diff
// the latter as one strided-batched GEMM into per-image parts, then one kernel adding their sum.
// Convolution's forward is the first, its weight gradient the second; Deconvolution's backward
// needs both from cols(top diff) (its bottom diff and its weight gradient), im2col'd once.
template <typename Dtype>
void ColsProducts(int num, const ConvGeometry& g, int filters, const Dtype* image,
                  const Dtype* weight, Dtype* out, const Dtype* side, Dtype* weight_diff) {
  if (!out && !weight_diff) return;
  const int kdim = g.channels * g.kernel_h * g.kernel_w;
  const int spatial = g.col_h() * g.col_w();
  const long long step = static_cast<long long>(filters) * spatial;  // out's and side's image
  const size_t part = weight_diff ? static_cast<size_t>(filters) * kdim : 0;
  const size_t cols_per_image = ColsPerImage(g);
  const int chunk = ChunkImages<Dtype>(num, cols_per_image + part);
  Dtype* workspace = ChunkWorkspace<Dtype>(chunk, cols_per_image + part);
  Dtype* parts = workspace + static_cast<size_t>(chunk) * cols_per_image;
  for (int first = 0; first < num; first += chunk) {
    const int images = std::min(chunk, num - first);
    const Dtype* cols =
        ChunkCols(images, g, image + static_cast<ptrdiff_t>(first) * g.image_count(), workspace);
    if (out) {
      GemmBatched<Dtype>(false, false, filters, spatial, kdim, weight, 0, cols, g.col_count(),
                         out + first * step, step, images);
    }
    if (weight_diff) {
      GemmBatched<Dtype>(false, true, filters, kdim, spatial, side + first * step, step, cols,
                         g.col_count(), parts, part, images);
      sum_parts_kernel<Dtype><<<CAFFE_GET_BLOCKS(part), CAFFE_CUDA_NUM_THREADS>>>(
          static_cast<int>(part), images, parts, weight_diff);
      CUDA_POST_KERNEL_CHECK;
    }
  }
}

// top (num, filters, P) = weight (filters x K) cols(bottom) + bias
template <typename Dtype>
void ConvForward(int num, const ConvGeometry& g, int filters, const Dtype* bottom,
                 const Dtype* weight, const Dtype* bias, Dtype* top) {
  ColsProducts<Dtype>(num, g, filters, bottom, weight, top, NULL, NULL);
  if (bias) AddBias(num, filters, g.col_h() * g.col_w(), bias, top);
}

// top (num, channels, H, W) = col2im(weight^T (K x filters) bottom (filters x P)) + bias
template <typename Dtype>
void DeconvForward(int num, const ConvGeometry& g, int filters, const Dtype* bottom,
                   const Dtype* weight, const Dtype* bias, Dtype* top) {
  const int kdim = g.channels * g.kernel_h * g.kernel_w;
  const int spatial = g.col_h() * g.col_w();
  const long long bottom_step = static_cast<long long>(filters) * spatial;
  if (Is1x1(g)) {  // the cols are the top
    GemmBatched<Dtype>(true, false, kdim, spatial, filters, weight, 0, bottom, bottom_step, top,
                       g.image_count(), num);
  } else {
    const int chunk = ChunkImages<Dtype>(num, g.col_count());
    Dtype* cols = ChunkWorkspace<Dtype>(chunk, g.col_count());
    for (int first = 0; first < num; first += chunk) {
      const int images = std::min(chunk, num - first);
      GemmBatched<Dtype>(true, false, kdim, spatial, filters, weight, 0, bottom + first * bottom_step,
                         bottom_step, cols, g.col_count(), images);
      const int n = images * g.image_count();
      batched_col2im_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(
          n, g, cols, top + static_cast<ptrdiff_t>(first) * g.image_count());
      CUDA_POST_KERNEL_CHECK;
    }
  }
  if (bias) AddBias(num, g.channels, g.height * g.width, bias, top);
}

template <typename Dtype>
void BiasGrad(int num, int channels, int spatial, const Dtype* diff, Dtype* bias_diff) {
  bias_grad_kernel<Dtype><<<channels, kReduceThreads>>>(num, channels, spatial, diff, bias_diff);
  CUDA_POST_KERNEL_CHECK;
}

// The kernel side of the geometry from the layer's members; false when the hooks decline.
bool LayerGeometry(const ConvLayerShape& layer, ConvGeometry* g) {
  if (layer.kernel.count() != 2 || layer.group != 1) return false;
  const int* k = layer.kernel.cpu_data();
  const int* s = layer.stride.cpu_data();
  const int* p = layer.pad.cpu_data();
  const int* d = layer.dilation.cpu_data();
  g->kernel_h = k[0], g->kernel_w = k[1], g->stride_h = s[0], g->stride_w = s[1];
  g->pad_h = p[0], g->pad_w = p[1], g->dilation_h = d[0], g->dilation_w = d[1];
  return true;
}

// Every blob 4-D, at least two images in each (a Blob's count is an int: Caffe checks it).
template <typename Dtype>
bool Batchable(const std::vector<Blob<Dtype>*>& images, const std::vector<Blob<Dtype>*>& cols) {
  for (size_t i = 0; i < images.size(); ++i) {
    if (images[i]->num_axes() != 4 || cols[i]->num_axes() != 4 || images[i]->shape(0) < 2)
      return false;
  }
  return true;
}

// One image's cols not empty and indexable by int (ConvGeometry counts in int).
bool ColsFitInt(const ConvGeometry& g) {
  const long long count =
      static_cast<long long>(g.channels) * g.kernel_h * g.kernel_w * g.col_h() * g.col_w();
  return count > 0 && count <= INT_MAX;
}

void SetImage(const std::vector<int>& shape, ConvGeometry* g) {
  g->channels = shape[1], g->height = shape[2], g->width = shape[3];
}

// The image side's geometry of pair i, and whether the cols side matches it (as Caffe's Reshape
// makes it: filters channels, col_h x col_w) and one image's cols are indexable by int.
template <typename Dtype>
bool PairGeometry(const Blob<Dtype>& image, const Blob<Dtype>& cols, int filters,
                  ConvGeometry* g) {
  SetImage(image.shape(), g);
  return ColsFitInt(*g) && cols.shape(1) == filters && cols.shape(2) == g->col_h() &&
         cols.shape(3) == g->col_w() && cols.shape(0) == image.shape(0);
}

}  // namespace

// images are Convolution's bottoms or Deconvolution's tops, cols the other side.
template <typename Dtype>
bool batched_conv_forward_gpu(bool transposed, const ConvLayerShape& layer,
                              const Blob<Dtype>& weight, const Blob<Dtype>* bias,
                              const std::vector<Blob<Dtype>*>& bottom,
                              const std::vector<Blob<Dtype>*>& top) {
  const std::vector<Blob<Dtype>*>& images = transposed ? top : bottom;
  const std::vector<Blob<Dtype>*>& cols = transposed ? bottom : top;
  ConvGeometry g;
  if (!LayerGeometry(layer, &g) || !Batchable(images, cols))
    return false;
  for (size_t i = 0; i < images.size(); ++i)
    if (!PairGeometry(*images[i], *cols[i], weight.shape(0), &g)) return false;
  const Dtype* b = bias ? bias->gpu_data() : static_cast<const Dtype*>(NULL);
  for (size_t i = 0; i < images.size(); ++i) {
    SetImage(images[i]->shape(), &g);
    const int num = images[i]->shape(0);
    if (transposed) {
      DeconvForward(num, g, weight.shape(0), bottom[i]->gpu_data(), weight.gpu_data(), b,
                    top[i]->mutable_gpu_data());
    } else {
      ConvForward(num, g, weight.shape(0), bottom[i]->gpu_data(), weight.gpu_data(), b,
                  top[i]->mutable_gpu_data());
    }
  }
  return true;
}

// Convolution: bias and weight diffs from its top diff and bottom data, bottom diff =
// col2im(W^T top diff), Deconvolution's forward of the diff. Deconvolution: bias from its top
// diff, weight from cols(top diff) and bottom data, bottom diff = W cols(top diff),
// Convolution's forward of the diff.
template <typename Dtype>
bool batched_conv_backward_gpu(bool transposed, const ConvLayerShape& layer, Blob<Dtype>* weight,
                               Blob<Dtype>* bias, const std::vector<bool>& param_propagate_down,
                               const std::vector<Blob<Dtype>*>& top,
                               const std::vector<bool>& propagate_down,
                               const std::vector<Blob<Dtype>*>& bottom) {
  const std::vector<Blob<Dtype>*>& images = transposed ? top : bottom;
  const std::vector<Blob<Dtype>*>& cols = transposed ? bottom : top;
  const int filters = weight->shape(0);
  ConvGeometry g;
  if (!LayerGeometry(layer, &g) || !Batchable(images, cols))
    return false;
  for (size_t i = 0; i < images.size(); ++i)
    if (!PairGeometry(*images[i], *cols[i], filters, &g)) return false;
  const bool weights = !param_propagate_down.empty() && param_propagate_down[0];
  const bool biases = bias && param_propagate_down.size() > 1 && param_propagate_down[1];
  for (size_t i = 0; i < images.size(); ++i) {
    SetImage(images[i]->shape(), &g);
    const int num = images[i]->shape(0);
    const Dtype* top_diff = top[i]->gpu_diff();
    if (biases) {
      if (transposed) {
        BiasGrad(num, g.channels, g.height * g.width, top_diff, bias->mutable_gpu_diff());
      } else {
        BiasGrad(num, filters, g.col_h() * g.col_w(), top_diff, bias->mutable_gpu_diff());
      }
    }
    Dtype* weight_diff = weights ? weight->mutable_gpu_diff() : NULL;
    Dtype* bottom_diff = propagate_down[i] ? bottom[i]->mutable_gpu_diff() : NULL;
    if (transposed) {  // both from cols(top diff): one im2col per chunk
      ColsProducts<Dtype>(num, g, filters, top_diff, weight->gpu_data(), bottom_diff,
                          bottom[i]->gpu_data(), weight_diff);
    } else {
      if (weight_diff) {
        ColsProducts<Dtype>(num, g, filters, bottom[i]->gpu_data(), NULL, NULL, top_diff,
                            weight_diff);
      }
      if (bottom_diff) {
        const Dtype* none = NULL;
        DeconvForward(num, g, filters, top_diff, weight->gpu_data(), none, bottom_diff);
      }
    }
  }
  return true;
}

#define INSTANTIATE_BATCHED_CONV(Dtype)                                                      \
  template bool batched_conv_forward_gpu<Dtype>(                                             \
      bool, const ConvLayerShape&, const Blob<Dtype>&, const Blob<Dtype>*,                   \
      const std::vector<Blob<Dtype>*>&, const std::vector<Blob<Dtype>*>&);                   \
  template bool batched_conv_backward_gpu<Dtype>(                                            \
      bool, const ConvLayerShape&, Blob<Dtype>*, Blob<Dtype>*, const std::vector<bool>&,     \
      const std::vector<Blob<Dtype>*>&, const std::vector<bool>&,                            \
      const std::vector<Blob<Dtype>*>&);
INSTANTIATE_BATCHED_CONV(float)
INSTANTIATE_BATCHED_CONV(double)

}  // namespace caffe
