#include <vector>

#include "caffe/filler.hpp"
#include "caffe/layers/depthwise_conv_layer.hpp"

// The CPU arithmetic is in caffe/util/depthwise_util.{hpp,cpp}: this file checks the
// parameters and runs it plane by plane.

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
  planes_.Reshape(g_);
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Forward_cpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  planes_.Forward(bottom[0]->cpu_data(), this->blobs_[0]->cpu_data(),
                  bias_term_ ? this->blobs_[1]->cpu_data() : NULL, top[0]->mutable_cpu_data());
}

template <typename Dtype>
void DepthwiseConvolutionLayer<Dtype>::Backward_cpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  const bool bias_diff = bias_term_ && this->param_propagate_down_[1];
  planes_.Backward(top[0]->cpu_diff(), bottom[0]->cpu_data(), this->blobs_[0]->cpu_data(),
                   bias_diff ? this->blobs_[1]->mutable_cpu_diff() : NULL,
                   this->param_propagate_down_[0] ? this->blobs_[0]->mutable_cpu_diff() : NULL,
                   propagate_down[0] ? bottom[0]->mutable_cpu_diff() : NULL);
}

#ifdef CPU_ONLY
STUB_GPU(DepthwiseConvolutionLayer);
#endif

INSTANTIATE_CLASS(DepthwiseConvolutionLayer);
REGISTER_LAYER_CLASS(DepthwiseConvolution);

}  // namespace caffe
