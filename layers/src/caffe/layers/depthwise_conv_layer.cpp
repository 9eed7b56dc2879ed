#include <algorithm>
#include <vector>

#include "caffe/filler.hpp"
#include "caffe/layers/depthwise_conv_layer.hpp"
#include "caffe/util/math_functions.hpp"

// CPU layout. Each (image, channel) plane is copied once into `padded_`: zero-padded in x and
// split by x phase (column x' = x + pad_w goes to phase x' % stride_w, index x' / stride_w).
// Tap kx of output column ox then reads phase (kx dilation_w) % stride_w at index
// ox + (kx dilation_w) / stride_w: every tap is a contiguous run of Wo values with no edge cases,
// also for stride 2, so the inner loops are plain streams the compiler vectorises. Rows in the
// y padding read `zeros_`. 3x3 kernels (all of MobileNetV2's) sum their nine taps in one pass.

namespace caffe {

namespace {

// Value of a repeated conv field: `repeated` with 0, 1 or 2 entries (Convolution's rule), unless
// the _h/_w form is given.
int conv_dim(const google::protobuf::RepeatedField<uint32_t>& repeated, bool has_hw,
             uint32_t hw, int axis, int fallback, const char* field, const string& name) {
  if (has_hw) {
    CHECK_EQ(repeated.size(), 0) << "DepthwiseConvolution " << name << ": give either " << field
        << " or " << field << "_h/_w, not both";
    return hw;
  }
  CHECK_LE(repeated.size(), 2) << "DepthwiseConvolution " << name << ": " << field
      << " takes 1 or 2 values (2-D only), got " << repeated.size();
  if (repeated.size() == 0) return fallback;
  return repeated.Get(repeated.size() == 1 ? 0 : axis);
}

}  // namespace

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::LayerSetUp(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const ConvolutionParameter& p = this->layer_param_.convolution_param();
  const string& name = this->layer_param_.name();
  CHECK_EQ(bottom[0]->num_axes(), 4) << "DepthwiseConvolution " << name
      << ": bottom must be (N, C, H, W), got " << bottom[0]->shape_string();
  CHECK_EQ(p.axis(), 1) << "DepthwiseConvolution " << name << ": axis must be 1, got " << p.axis();
  const int channels = bottom[0]->channels();
  CHECK_EQ(p.num_output(), channels) << "DepthwiseConvolution " << name
      << ": num_output must equal the input channels (" << channels << "), got " << p.num_output();
  CHECK(!p.has_group() || p.group() == channels) << "DepthwiseConvolution " << name
      << ": group must equal the input channels (" << channels << ") or be left out, got "
      << p.group();
  g_.channels = channels;
  g_.kernel_h = conv_dim(p.kernel_size(), p.has_kernel_h() || p.has_kernel_w(), p.kernel_h(), 0,
                         0, "kernel", name);
  g_.kernel_w = conv_dim(p.kernel_size(), p.has_kernel_h() || p.has_kernel_w(), p.kernel_w(), 1,
                         0, "kernel", name);
  g_.stride_h = conv_dim(p.stride(), p.has_stride_h() || p.has_stride_w(), p.stride_h(), 0, 1,
                         "stride", name);
  g_.stride_w = conv_dim(p.stride(), p.has_stride_h() || p.has_stride_w(), p.stride_w(), 1, 1,
                         "stride", name);
  g_.pad_h = conv_dim(p.pad(), p.has_pad_h() || p.has_pad_w(), p.pad_h(), 0, 0, "pad", name);
  g_.pad_w = conv_dim(p.pad(), p.has_pad_h() || p.has_pad_w(), p.pad_w(), 1, 0, "pad", name);
  g_.dilation_h = conv_dim(p.dilation(), false, 0, 0, 1, "dilation", name);
  g_.dilation_w = conv_dim(p.dilation(), false, 0, 1, 1, "dilation", name);
  CHECK(g_.kernel_h > 0 && g_.kernel_w > 0) << "DepthwiseConvolution " << name
      << ": kernel must be > 0, got " << g_.kernel_h << " x " << g_.kernel_w;
  CHECK(g_.stride_h > 0 && g_.stride_w > 0) << "DepthwiseConvolution " << name
      << ": stride must be > 0, got " << g_.stride_h << " x " << g_.stride_w;
  CHECK(g_.dilation_h > 0 && g_.dilation_w > 0) << "DepthwiseConvolution " << name
      << ": dilation must be > 0, got " << g_.dilation_h << " x " << g_.dilation_w;
  bias_term_ = p.bias_term();

  const vector<int> weight_shape = {channels, 1, g_.kernel_h, g_.kernel_w};
  const vector<int> bias_shape(1, channels);
  if (!this->blobs_.empty()) {
    CHECK_EQ(this->blobs_.size(), bias_term_ ? 2 : 1) << "DepthwiseConvolution " << name
        << ": " << this->blobs_.size() << " given blobs, expected " << (bias_term_ ? 2 : 1);
    CHECK(this->blobs_[0]->shape() == weight_shape) << "DepthwiseConvolution " << name
        << ": given weights are " << this->blobs_[0]->shape_string() << ", expected "
        << Blob<Dtype>(weight_shape).shape_string();
    if (bias_term_) {
      CHECK(this->blobs_[1]->shape() == bias_shape) << "DepthwiseConvolution " << name
          << ": given bias is " << this->blobs_[1]->shape_string();
    }
  } else {
    this->blobs_.resize(bias_term_ ? 2 : 1);
    this->blobs_[0].reset(new Blob<Dtype>(weight_shape));
    // fan_in of the msra/xavier fillers is count / num = kernel area, as for grouped Convolution.
    shared_ptr<Filler<Dtype> > weight_filler(GetFiller<Dtype>(p.weight_filler()));
    weight_filler->Fill(this->blobs_[0].get());
    if (bias_term_) {
      this->blobs_[1].reset(new Blob<Dtype>(bias_shape));
      shared_ptr<Filler<Dtype> > bias_filler(GetFiller<Dtype>(p.bias_filler()));
      bias_filler->Fill(this->blobs_[1].get());
    }
  }
  this->param_propagate_down_.resize(this->blobs_.size(), true);
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Reshape(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const string& name = this->layer_param_.name();
  CHECK_EQ(bottom[0]->num_axes(), 4) << "DepthwiseConvolution " << name
      << ": bottom must be (N, C, H, W), got " << bottom[0]->shape_string();
  CHECK_EQ(bottom[0]->channels(), g_.channels) << "DepthwiseConvolution " << name
      << ": the input channels changed after set-up, got " << bottom[0]->shape_string();
  g_.num = bottom[0]->num();
  g_.height = bottom[0]->height();
  g_.width = bottom[0]->width();
  const int extent_h = g_.dilation_h * (g_.kernel_h - 1) + 1;
  const int extent_w = g_.dilation_w * (g_.kernel_w - 1) + 1;
  g_.out_h = (g_.height + 2 * g_.pad_h - extent_h) / g_.stride_h + 1;
  g_.out_w = (g_.width + 2 * g_.pad_w - extent_w) / g_.stride_w + 1;
  CHECK(g_.height + 2 * g_.pad_h >= extent_h && g_.width + 2 * g_.pad_w >= extent_w)
      << "DepthwiseConvolution " << name << ": the kernel (extent " << extent_h << " x "
      << extent_w << ") is larger than the padded input " << bottom[0]->shape_string();
  top[0]->Reshape(g_.num, g_.channels, g_.out_h, g_.out_w);
  row_len_ = g_.out_w + (g_.kernel_w - 1) * g_.dilation_w / g_.stride_w;
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::PadPlane(const Dtype* in) {
  const int sw = g_.stride_w, h = g_.height, w = g_.width, len = row_len_;
  for (int r = 0; r < sw; ++r) {
    for (int y = 0; y < h; ++y) {
      const Dtype* src = in + y * w;
      Dtype* dst = &padded_[(r * h + y) * len];
      for (int j = 0; j < len; ++j) {
        const int x = j * sw + r - g_.pad_w;
        dst[j] = x >= 0 && x < w ? src[x] : Dtype(0);
      }
    }
  }
}

template <typename Dtype>
const Dtype* DepthwiseConvolutionLayer<Dtype>::PaddedRow(int iy, int phase) const {
  if (iy < 0 || iy >= g_.height) return zeros_.data();
  return &padded_[(phase * g_.height + iy) * row_len_];
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::ForwardPlane(const Dtype* weight, Dtype bias,
                                                    Dtype* out) {
  const int kh = g_.kernel_h, kw = g_.kernel_w, wo = g_.out_w;
  for (int oy = 0; oy < g_.out_h; ++oy) {
    Dtype* __restrict__ o = out + oy * wo;
    const int iy0 = oy * g_.stride_h - g_.pad_h;
    if (kh == 3 && kw == 3) {
      const Dtype* s[9];
      for (int t = 0; t < 9; ++t) {
        const int dx = (t % 3) * g_.dilation_w;
        s[t] = PaddedRow(iy0 + (t / 3) * g_.dilation_h, dx % g_.stride_w) + dx / g_.stride_w;
      }
      const Dtype* __restrict__ s0 = s[0], * __restrict__ s1 = s[1], * __restrict__ s2 = s[2];
      const Dtype* __restrict__ s3 = s[3], * __restrict__ s4 = s[4], * __restrict__ s5 = s[5];
      const Dtype* __restrict__ s6 = s[6], * __restrict__ s7 = s[7], * __restrict__ s8 = s[8];
      const Dtype w0 = weight[0], w1 = weight[1], w2 = weight[2], w3 = weight[3],
                  w4 = weight[4], w5 = weight[5], w6 = weight[6], w7 = weight[7], w8 = weight[8];
      for (int ox = 0; ox < wo; ++ox) {
        o[ox] = bias + w0 * s0[ox] + w1 * s1[ox] + w2 * s2[ox] + w3 * s3[ox] + w4 * s4[ox]
              + w5 * s5[ox] + w6 * s6[ox] + w7 * s7[ox] + w8 * s8[ox];
      }
      continue;
    }
    for (int ox = 0; ox < wo; ++ox) o[ox] = bias;
    for (int ky = 0; ky < kh; ++ky) {
      const int iy = iy0 + ky * g_.dilation_h;
      if (iy < 0 || iy >= g_.height) continue;
      for (int kx = 0; kx < kw; ++kx) {
        const int dx = kx * g_.dilation_w;
        const Dtype* __restrict__ src = PaddedRow(iy, dx % g_.stride_w) + dx / g_.stride_w;
        const Dtype wv = weight[ky * kw + kx];
        for (int ox = 0; ox < wo; ++ox) o[ox] += wv * src[ox];
      }
    }
  }
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::BackwardDataPlane(const Dtype* top_diff,
    const Dtype* weight, Dtype* bottom_diff) {
  const int kh = g_.kernel_h, kw = g_.kernel_w, wo = g_.out_w, h = g_.height, len = row_len_;
  std::fill(padded_diff_.begin(), padded_diff_.end(), Dtype(0));
  for (int oy = 0; oy < g_.out_h; ++oy) {
    const Dtype* __restrict__ t = top_diff + oy * wo;
    for (int ky = 0; ky < kh; ++ky) {
      const int iy = oy * g_.stride_h - g_.pad_h + ky * g_.dilation_h;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < kw; ++kx) {
        const int dx = kx * g_.dilation_w;
        Dtype* __restrict__ d =
            &padded_diff_[((dx % g_.stride_w) * h + iy) * len + dx / g_.stride_w];
        const Dtype wv = weight[ky * kw + kx];
        for (int ox = 0; ox < wo; ++ox) d[ox] += wv * t[ox];
      }
    }
  }
  // Back from the padded, phase-split layout; the padding's sums are dropped.
  const int sw = g_.stride_w, w = g_.width;
  for (int y = 0; y < h; ++y) {
    Dtype* dst = bottom_diff + y * w;
    for (int x = 0; x < w; ++x) {
      const int xp = x + g_.pad_w;
      const int j = xp / sw;
      dst[x] = j < len ? padded_diff_[((xp % sw) * h + y) * len + j] : Dtype(0);
    }
  }
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::BackwardWeightPlane(const Dtype* top_diff,
                                                           Dtype* weight_diff) {
  // Products are summed per tap into a row of Wo partial sums (a vectorisable stream, where a
  // scalar running sum would not vectorise without -ffast-math), then each row is reduced.
  const int kh = g_.kernel_h, kw = g_.kernel_w, wo = g_.out_w;
  std::fill(acc_.begin(), acc_.begin() + kh * kw * wo, Dtype(0));
  for (int oy = 0; oy < g_.out_h; ++oy) {
    const Dtype* __restrict__ t = top_diff + oy * wo;
    for (int ky = 0; ky < kh; ++ky) {
      const int iy = oy * g_.stride_h - g_.pad_h + ky * g_.dilation_h;
      if (iy < 0 || iy >= g_.height) continue;
      for (int kx = 0; kx < kw; ++kx) {
        const int dx = kx * g_.dilation_w;
        const Dtype* __restrict__ src = PaddedRow(iy, dx % g_.stride_w) + dx / g_.stride_w;
        Dtype* __restrict__ a = &acc_[(ky * kw + kx) * wo];
        for (int ox = 0; ox < wo; ++ox) a[ox] += t[ox] * src[ox];
      }
    }
  }
  for (int k = 0; k < kh * kw; ++k) {
    Dtype sum = 0;
    for (int ox = 0; ox < wo; ++ox) sum += acc_[k * wo + ox];
    weight_diff[k] += sum;
  }
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Forward_cpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const int planes = g_.num * g_.channels, taps = g_.kernel_h * g_.kernel_w;
  const int in_size = g_.height * g_.width, out_size = g_.out_h * g_.out_w;
  padded_.resize(g_.stride_w * g_.height * row_len_);
  zeros_.assign(row_len_, Dtype(0));
  const Dtype* in = bottom[0]->cpu_data();
  const Dtype* weight = this->blobs_[0]->cpu_data();
  const Dtype* bias = bias_term_ ? this->blobs_[1]->cpu_data() : NULL;
  Dtype* out = top[0]->mutable_cpu_data();
  for (int p = 0; p < planes; ++p) {
    const int c = p % g_.channels;
    PadPlane(in + p * in_size);
    ForwardPlane(weight + c * taps, bias ? bias[c] : Dtype(0), out + p * out_size);
  }
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Backward_cpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  const bool weights = this->param_propagate_down_[0];
  const bool biases = bias_term_ && this->param_propagate_down_[1];
  const int planes = g_.num * g_.channels, taps = g_.kernel_h * g_.kernel_w;
  const int in_size = g_.height * g_.width, out_size = g_.out_h * g_.out_w;
  const Dtype* top_diff = top[0]->cpu_diff();
  acc_.resize((taps + 1) * g_.out_w);
  if (biases) {
    // Rows summed into Wo partial sums first (vectorised), as in BackwardWeightPlane.
    Dtype* bias_diff = this->blobs_[1]->mutable_cpu_diff();
    Dtype* __restrict__ a = &acc_[taps * g_.out_w];
    for (int p = 0; p < planes; ++p) {
      std::fill(a, a + g_.out_w, Dtype(0));
      for (int oy = 0; oy < g_.out_h; ++oy) {
        const Dtype* __restrict__ t = top_diff + p * out_size + oy * g_.out_w;
        for (int ox = 0; ox < g_.out_w; ++ox) a[ox] += t[ox];
      }
      Dtype sum = 0;
      for (int ox = 0; ox < g_.out_w; ++ox) sum += a[ox];
      bias_diff[p % g_.channels] += sum;
    }
  }
  if (weights) {
    padded_.resize(g_.stride_w * g_.height * row_len_);
    zeros_.assign(row_len_, Dtype(0));
    const Dtype* in = bottom[0]->cpu_data();
    Dtype* weight_diff = this->blobs_[0]->mutable_cpu_diff();
    for (int p = 0; p < planes; ++p) {
      PadPlane(in + p * in_size);
      BackwardWeightPlane(top_diff + p * out_size, weight_diff + (p % g_.channels) * taps);
    }
  }
  if (propagate_down[0]) {
    padded_diff_.resize(g_.stride_w * g_.height * row_len_);
    const Dtype* weight = this->blobs_[0]->cpu_data();
    Dtype* bottom_diff = bottom[0]->mutable_cpu_diff();
    for (int p = 0; p < planes; ++p) {
      BackwardDataPlane(top_diff + p * out_size, weight + (p % g_.channels) * taps,
                        bottom_diff + p * in_size);
    }
  }
}

#ifdef CPU_ONLY
STUB_GPU(DepthwiseConvolutionLayer);
#endif

INSTANTIATE_CLASS(DepthwiseConvolutionLayer);
REGISTER_LAYER_CLASS(DepthwiseConvolution);

}  // namespace caffe
