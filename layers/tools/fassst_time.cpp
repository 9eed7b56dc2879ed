// fassst_time: the forward latency of a whole net, one synchronisation per pass.
//
//   fassst_time -model NET.prototxt [-weights W.caffemodel] [-iterations 50] [-warmup 5]
//               [-gpu ID]
//
// Why not `caffe time`: it times every layer with its own Timer, and on a GPU each Timer waits
// for the device, so its "Average Forward pass" holds one synchronisation per layer (about 250
// in the FASSST nets): milliseconds at a forward of a few milliseconds, and a GPU that never
// queues the next layer's kernels while the current ones run. This tool runs Net::Forward as
// an application does and waits once at the end of each pass (batch as the net says: 1 in the
// benchmark nets). Its per-layer breakdown stays `caffe time`'s job. The net must need no input
// blobs (the --export nets: DummyData). Prints one line:
//   fassst_time: NET: forward over K passes: median M ms, mean A ms, min L ms, max H ms (DEVICE)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "caffe/caffe.hpp"

DEFINE_string(model, "", "the net to time (prototxt; TEST phase, no input blobs)");
DEFINE_string(weights, "", "optional caffemodel to load (default: the net's fillers)");
DEFINE_int32(iterations, 50, "timed forward passes (>= 1)");
DEFINE_int32(warmup, 5, "untimed forward passes first (>= 0)");
DEFINE_int32(gpu, -1, "GPU device id; -1: the CPU");

namespace {

bool Readable(const std::string& path) { return std::ifstream(path.c_str()).good(); }

// One line naming the flag and what is wrong, as the project's scripts do; exit status 2.
int Fail(const std::string& what) {
  std::fprintf(stderr, "error: fassst_time: %s\n", what.c_str());
  return 2;
}

void WaitForDevice() {
#ifndef CPU_ONLY
  if (caffe::Caffe::mode() == caffe::Caffe::GPU) CUDA_CHECK(cudaDeviceSynchronize());
#endif
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_alsologtostderr = 1;
  gflags::SetUsageMessage(
      "times whole forward passes of a net, one synchronisation per pass\n"
      "usage: fassst_time -model NET.prototxt [-weights W] [-iterations N] [-warmup N] [-gpu ID]");
  caffe::GlobalInit(&argc, &argv);
  if (FLAGS_model.empty()) return Fail("-model: required (a prototxt)");
  if (!Readable(FLAGS_model)) return Fail(FLAGS_model + ": cannot read the -model file");
  if (!FLAGS_weights.empty() && !Readable(FLAGS_weights))
    return Fail(FLAGS_weights + ": cannot read the -weights file");
  if (FLAGS_iterations < 1) return Fail("-iterations: expected >= 1");
  if (FLAGS_warmup < 0) return Fail("-warmup: expected >= 0");
  std::string device = "CPU";
  if (FLAGS_gpu >= 0) {
#ifdef CPU_ONLY
    return Fail("-gpu: this build has no GPU support (CPU_ONLY)");
#else
    caffe::Caffe::SetDevice(FLAGS_gpu);
    caffe::Caffe::set_mode(caffe::Caffe::GPU);
    device = "GPU " + std::to_string(FLAGS_gpu);
#endif
  } else {
    caffe::Caffe::set_mode(caffe::Caffe::CPU);
  }

  caffe::Net<float> net(FLAGS_model, caffe::TEST);
  if (!net.input_blobs().empty())
    return Fail(FLAGS_model + ": the net has input blobs; time a net that makes its own input");
  if (!FLAGS_weights.empty()) net.CopyTrainedLayersFrom(FLAGS_weights);

  for (int i = 0; i < FLAGS_warmup; ++i) net.Forward();
  WaitForDevice();
  std::vector<double> ms;
  for (int i = 0; i < FLAGS_iterations; ++i) {
    const auto start = std::chrono::steady_clock::now();
    net.Forward();
    WaitForDevice();
    ms.push_back(std::chrono::duration<double, std::milli>(
        std::chrono::steady_clock::now() - start).count());
  }
  double sum = 0;
  for (double t : ms) sum += t;
  std::vector<double> sorted(ms);
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  std::printf("fassst_time: %s: forward over %zu passes: median %.3f ms, mean %.3f ms, "
              "min %.3f ms, max %.3f ms (%s)\n", FLAGS_model.c_str(), n, median, sum / n,
              sorted.front(), sorted.back(), device.c_str());
  return 0;
}
