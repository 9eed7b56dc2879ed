#ifndef CAFFE_UTIL_GPU_RUNS_CPU_HPP_
#define CAFFE_UTIL_GPU_RUNS_CPU_HPP_

// For layers that have no CUDA code: in a GPU build their Forward_gpu/Backward_gpu run the CPU
// code. Caffe's SyncedMemory moves the blobs to the host and back, so results are exact and only
// speed is lost. It serves the pinned fork's CPU-only layers, which otherwise break the GPU link
// (cmake/patches/0002-gpu-runs-cpu-layers.patch).
#define GPU_RUNS_CPU(classname) \
template <typename Dtype> \
void classname<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom, \
    const vector<Blob<Dtype>*>& top) { this->Forward_cpu(bottom, top); } \
template <typename Dtype> \
void classname<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top, \
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) { \
  this->Backward_cpu(top, propagate_down, bottom); }

#endif  // CAFFE_UTIL_GPU_RUNS_CPU_HPP_
