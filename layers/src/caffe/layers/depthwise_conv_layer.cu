#include <vector>

#include "caffe/layers/depthwise_conv_layer.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

// One thread per output value: the sum over its kernel taps inside the input.
template <typename Dtype>
__global__ void depthwise_forward_kernel(int n, DepthwiseGeometry g, const Dtype* in,
    const Dtype* weight, const Dtype* bias, Dtype* out) {
  CUDA_KERNEL_LOOP(index, n) {
    const int ox = index % g.out_w;
    const int oy = (index / g.out_w) % g.out_h;
    const int plane = index / (g.out_w * g.out_h);  // n * C + c
    const int c = plane % g.channels;
    const Dtype* src = in + plane * g.height * g.width;
    const Dtype* w = weight + c * g.kernel_h * g.kernel_w;
    Dtype sum = bias ? bias[c] : Dtype(0);
    for (int ky = 0; ky < g.kernel_h; ++ky) {
      const int iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
      if (iy < 0 || iy >= g.height) continue;
      for (int kx = 0; kx < g.kernel_w; ++kx) {
        const int ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
        if (ix >= 0 && ix < g.width) sum += w[ky * g.kernel_w + kx] * src[iy * g.width + ix];
      }
    }
    out[index] = sum;
  }
}

// One thread per input value: gathers the outputs whose taps read it (no atomics).
template <typename Dtype>
__global__ void depthwise_backward_data_kernel(int n, DepthwiseGeometry g,
    const Dtype* top_diff, const Dtype* weight, Dtype* bottom_diff) {
  CUDA_KERNEL_LOOP(index, n) {
    const int x = index % g.width;
    const int y = (index / g.width) % g.height;
    const int plane = index / (g.width * g.height);
    const int c = plane % g.channels;
    const Dtype* t = top_diff + plane * g.out_h * g.out_w;
    const Dtype* w = weight + c * g.kernel_h * g.kernel_w;
    Dtype sum = 0;
    for (int ky = 0; ky < g.kernel_h; ++ky) {
      const int ty = y + g.pad_h - ky * g.dilation_h;  // = oy * stride_h
      if (ty < 0 || ty % g.stride_h != 0 || ty / g.stride_h >= g.out_h) continue;
      const int oy = ty / g.stride_h;
      for (int kx = 0; kx < g.kernel_w; ++kx) {
        const int tx = x + g.pad_w - kx * g.dilation_w;
        if (tx < 0 || tx % g.stride_w != 0 || tx / g.stride_w >= g.out_w) continue;
        sum += w[ky * g.kernel_w + kx] * t[oy * g.out_w + tx / g.stride_w];
      }
    }
    bottom_diff[index] = sum;
  }
}

// Parameter gradients are sums over N Ho Wo products per (channel, tap): one block per sum,
// its threads stride over the terms (so not CUDA_KERNEL_LOOP, which strides over the grid), then
// a shared-memory tree reduction. Deterministic, and it adds to the diff as Caffe expects.
const int kReduceThreads = 256;

template <typename Dtype>
__device__ void block_sum_add(Dtype partial, Dtype* target) {
  __shared__ Dtype buf[kReduceThreads];
  buf[threadIdx.x] = partial;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) *target += buf[0];
}

// blockIdx.x = c * kernel_h * kernel_w + tap
template <typename Dtype>
__global__ void depthwise_backward_weight_kernel(DepthwiseGeometry g, const Dtype* top_diff,
    const Dtype* in, Dtype* weight_diff) {
  const int taps = g.kernel_h * g.kernel_w;
  const int c = blockIdx.x / taps, tap = blockIdx.x % taps;
  const int ky = tap / g.kernel_w, kx = tap % g.kernel_w;
  const int out_size = g.out_h * g.out_w;
  Dtype partial = 0;
  for (int i = threadIdx.x; i < g.num * out_size; i += blockDim.x) {
    const int n = i / out_size, ox = i % g.out_w, oy = (i / g.out_w) % g.out_h;
    const int iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
    const int ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
    if (iy >= 0 && iy < g.height && ix >= 0 && ix < g.width) {
      const int plane = n * g.channels + c;
      partial += top_diff[plane * out_size + oy * g.out_w + ox] *
                 in[(plane * g.height + iy) * g.width + ix];
    }
  }
  block_sum_add(partial, weight_diff + blockIdx.x);
}

// blockIdx.x = c
template <typename Dtype>
__global__ void depthwise_backward_bias_kernel(DepthwiseGeometry g, const Dtype* top_diff,
                                               Dtype* bias_diff) {
  const int c = blockIdx.x, out_size = g.out_h * g.out_w;
  Dtype partial = 0;
  for (int i = threadIdx.x; i < g.num * out_size; i += blockDim.x) {
    partial += top_diff[((i / out_size) * g.channels + c) * out_size + i % out_size];
  }
  block_sum_add(partial, bias_diff + c);
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const int n = top[0]->count();
  if (n == 0) return;
  depthwise_forward_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(
      n, g_, bottom[0]->gpu_data(), this->blobs_[0]->gpu_data(),
      bias_term_ ? this->blobs_[1]->gpu_data() : NULL, top[0]->mutable_gpu_data());
  CUDA_POST_KERNEL_CHECK;
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  if (top[0]->count() == 0) return;
  const Dtype* top_diff = top[0]->gpu_diff();
  if (bias_term_ && this->param_propagate_down_[1]) {
    depthwise_backward_bias_kernel<Dtype><<<g_.channels, kReduceThreads>>>(
        g_, top_diff, this->blobs_[1]->mutable_gpu_diff());
    CUDA_POST_KERNEL_CHECK;
  }
  if (this->param_propagate_down_[0]) {
    depthwise_backward_weight_kernel<Dtype><<<g_.channels * g_.kernel_h * g_.kernel_w,
                                              kReduceThreads>>>(
        g_, top_diff, bottom[0]->gpu_data(), this->blobs_[0]->mutable_gpu_diff());
    CUDA_POST_KERNEL_CHECK;
  }
  if (propagate_down[0]) {
    const int n = bottom[0]->count();
    depthwise_backward_data_kernel<Dtype><<<CAFFE_GET_BLOCKS(n), CAFFE_CUDA_NUM_THREADS>>>(
        n, g_, top_diff, this->blobs_[0]->gpu_data(), bottom[0]->mutable_gpu_diff());
    CUDA_POST_KERNEL_CHECK;
  }
}

INSTANTIATE_LAYER_GPU_FUNCS(DepthwiseConvolutionLayer);

}  // namespace caffe
