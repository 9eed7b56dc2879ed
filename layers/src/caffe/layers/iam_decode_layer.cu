#include <vector>

#include "caffe/layers/iam_decode_layer.hpp"
#include "caffe/util/iam_box_util.hpp"
#include "caffe/util/math_functions.hpp"

namespace caffe {

// One thread per slot (image i, slot s): the same per-slot math as Forward_cpu.
template <typename Dtype>
__global__ void iam_decode_kernel(int count, int num_slots, int values, int slot_stride,
    int value_stride, int num_classes, Dtype width, Dtype height, Dtype min_size, bool cell,
    int grid_width, int grid_height, const Dtype* in, Dtype* dec) {
  CUDA_KERNEL_LOOP(index, count) {
    const int i = index / num_slots;
    const int s = index % num_slots;
    Dtype* d = dec + index * 6;
    int label;
    const Dtype cx = (s % grid_width + Dtype(0.5)) / grid_width;
    const Dtype cy = (s / grid_width + Dtype(0.5)) / grid_height;
    iam_decode_slot(in + i * num_slots * values + s * slot_stride, value_stride, num_classes,
                    width, height, min_size, d, d + 4, &label, cell, cx, cy);
    d[5] = label;
  }
}

// The kernel decodes every slot; the selection and sort then run on the host on the per-slot
// arrays (N n x 6 numbers): the number of kept ROIs decides the tops' shapes, so it must reach
// the host anyway, and n is tens, far too small for a device sort to pay for itself.
template <typename Dtype>
void IAMDecodeLayer<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom,
    const vector<Blob<Dtype>*>& top) {
  const int count = num_images_ * num_slots_;
  if (count > 0) {
    iam_decode_kernel<Dtype><<<CAFFE_GET_BLOCKS(count), CAFFE_CUDA_NUM_THREADS>>>(
        count, num_slots_, 4 + num_classes_, slot_stride_, value_stride_, num_classes_,
        image_width_, image_height_, min_box_size_, cell_, grid_width_, grid_height_,
        bottom[0]->gpu_data(),
        decoded_.mutable_gpu_data());
    CUDA_POST_KERNEL_CHECK;
  }
  SelectToTops(top);  // decoded_.cpu_data() copies the per-slot arrays back
}

template <typename Dtype>
void IAMDecodeLayer<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {
  if (propagate_down[0]) {
    caffe_gpu_set(bottom[0]->count(), Dtype(0), bottom[0]->mutable_gpu_diff());
  }
}

INSTANTIATE_LAYER_GPU_FUNCS(IAMDecodeLayer);

}  // namespace caffe
