// fassst_time: the forward latency of a whole net, one synchronisation per pass.
//
//   fassst_time -model NET.prototxt [-weights W.caffemodel] [-iterations 50] [-warmup 5]
//               [-gpu ID] [-check_cpu | -check_against OTHER.prototxt] [-check_tolerance 1e-3]
//
// Why not `caffe time`: it times every layer with its own Timer, and on a GPU each Timer waits
// for the device, so its "Average Forward pass" holds one synchronisation per layer (about 250
// in the FASSST nets): milliseconds at a forward of a few milliseconds, and a GPU that never
// queues the next layer's kernels while the current ones run. This tool runs Net::Forward as
// an application does and waits once at the end of each pass (batch as the net says: 1 in the
// benchmark nets). Its per-layer breakdown stays `caffe time`'s job. The net must need no input
// blobs (the --export nets: DummyData). Prints one line:
//   fassst_time: NET: forward over K passes: median M ms, mean A ms, min L ms, max H ms (DEVICE)
// -check_cpu then runs one more forward on the device and one on the CPU, both from the same
// random seed (the nets' inputs are drawn by fillers on the host, so both passes see the same
// input) on the same weights, and compares every blob: the whole GPU path (every CUDA layer
// and the overlay's batched convolutions) against the CPU's independent code, in one call.
// It prints the blobs over the tolerance and one line
//   fassst_time: NET: DEVICE vs CPU over N blobs: worst relative difference R (blob B); K over T
// and exits 1 when K > 0. Relative: max |device - CPU| over the blob's max |CPU|.
// -check_against OTHER.prototxt makes the CPU side another net: OTHER, given NET's weights by
// layer name, its blobs compared by name (line: "... DEVICE vs OTHER on the CPU over ..."). On a
// machine without a GPU that is how the comparison itself is tested: a net against itself
// passes, against a copy with a planted change fails naming the blob.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "caffe/caffe.hpp"
#include "caffe/util/io.hpp"
#include "caffe/util/upgrade_proto.hpp"

DEFINE_string(model, "", "the net to time (prototxt; TEST phase, no input blobs)");
DEFINE_string(weights, "", "optional caffemodel to load (default: the net's fillers)");
DEFINE_int32(iterations, 50, "timed forward passes (>= 1)");
DEFINE_int32(warmup, 5, "untimed forward passes first (>= 0)");
DEFINE_int32(gpu, -1, "GPU device id; -1: the CPU");
DEFINE_bool(check_cpu, false, "also compare every blob of one forward with the CPU's");
DEFINE_string(check_against, "",
              "as -check_cpu, with this net (prototxt, same blob names) as the CPU side");
DEFINE_double(check_tolerance, 1e-3,
              "-check_cpu, -check_against: largest max |diff| / max |CPU| per blob");

namespace {

bool Readable(const std::string& path) { return std::ifstream(path.c_str()).good(); }

// One line naming the flag and what is wrong, as the project's scripts do; exit status 2.
int Fail(const std::string& what) {
  std::fprintf(stderr, "error: fassst_time: %s\n", what.c_str());
  return 2;
}

std::string ProtoShape(const caffe::BlobProto& b) {
  std::string out;
  if (b.has_shape()) {
    for (int i = 0; i < b.shape().dim_size(); ++i)
      out += (i ? " " : "") + std::to_string(b.shape().dim(i));
  } else {  // the legacy 4-D fields
    out = std::to_string(b.num()) + " " + std::to_string(b.channels()) + " " +
          std::to_string(b.height()) + " " + std::to_string(b.width());
  }
  return out;
}

// The first layer whose blobs in `weights` do not fit the net (Caffe's CopyTrainedLayersFrom
// would abort on it), as text; "" when all fit. Layers the net lacks are ignored, as Caffe does,
// but weights sharing no layer with the net are refused (almost any bytes parse as some
// NetParameter, so that is also what a wrong file looks like).
std::string Misfit(const caffe::Net<float>& net, const caffe::NetParameter& weights) {
  int shared = 0;
  for (int l = 0; l < weights.layer_size(); ++l) {
    const caffe::LayerParameter& source = weights.layer(l);
    if (!net.has_layer(source.name())) continue;
    ++shared;
    const std::vector<caffe::shared_ptr<caffe::Blob<float> > >& target =
        net.layer_by_name(source.name())->blobs();
    if (static_cast<int>(target.size()) != source.blobs_size())
      return "layer " + source.name() + ": " + std::to_string(source.blobs_size()) +
             " blobs in the weights, " + std::to_string(target.size()) + " in the net";
    for (int b = 0; b < source.blobs_size(); ++b) {
      if (!target[b]->ShapeEquals(source.blobs(b)))
        return "layer " + source.name() + " blob " + std::to_string(b) + ": shape " +
               ProtoShape(source.blobs(b)) + " in the weights, " + target[b]->shape_string() +
               " in the net";
    }
  }
  return shared ? "" : "no layer of the net is in it (weights of another net, or not weights)";
}

void WaitForDevice() {
#ifndef CPU_ONLY
  if (caffe::Caffe::mode() == caffe::Caffe::GPU) CUDA_CHECK(cudaDeviceSynchronize());
#endif
}

// Every blob of one forward from the seed, in the current mode: the nets' inputs are drawn by
// fillers on the host, so every forward from the seed sees the same input.
std::vector<std::vector<float> > ForwardFromSeed(caffe::Net<float>* net) {
  const unsigned int kSeed = 1701;
  caffe::Caffe::set_random_seed(kSeed);
  net->Forward();
  std::vector<std::vector<float> > values;
  for (const caffe::shared_ptr<caffe::Blob<float> >& blob : net->blobs())
    values.emplace_back(blob->cpu_data(), blob->cpu_data() + blob->count());
  return values;
}

// One forward of `net` from the seed in the current mode, then one of `reference` (`net` itself
// for -check_cpu) on the CPU; compares each blob of `net` with the reference's blob of its name
// (which the caller made sure exists) and returns the number over the tolerance.
int CompareWithCpu(caffe::Net<float>* net, caffe::Net<float>* reference,
                   const std::string& device, const std::string& reference_name) {
  const std::vector<std::vector<float> > first = ForwardFromSeed(net);
  caffe::Caffe::set_mode(caffe::Caffe::CPU);
  const std::vector<std::vector<float> > cpu_values = ForwardFromSeed(reference);
  int over = 0;
  double worst = 0;
  std::string worst_name = "-";
  for (size_t i = 0; i < first.size(); ++i) {
    const std::string& name = net->blob_names()[i];
    const std::vector<std::string>& names = reference->blob_names();
    const std::vector<float>& cpu =
        cpu_values[std::find(names.begin(), names.end(), name) - names.begin()];
    if (cpu.size() != first[i].size()) {  // another shape: as far off as can be
      ++over;
      std::printf("fassst_time: blob %s: %zu values, %zu on the CPU: over\n", name.c_str(),
                  first[i].size(), cpu.size());
      worst = std::numeric_limits<double>::infinity(), worst_name = name;
      continue;
    }
    double diff = 0, scale = 0;
    for (size_t k = 0; k < cpu.size(); ++k) {
      scale = std::max(scale, std::fabs(static_cast<double>(cpu[k])));
      diff = std::max(diff, std::fabs(static_cast<double>(first[i][k]) - cpu[k]));
    }
    // NaN anywhere makes the comparison false, so it counts as over
    const double rel = scale > 0 ? diff / scale : diff;
    if (!(rel <= FLAGS_check_tolerance)) {
      ++over;
      std::printf("fassst_time: blob %s: max |diff| %.3g, max |CPU| %.3g, relative %.3g: over "
                  "%.3g\n", name.c_str(), diff, scale, rel, FLAGS_check_tolerance);
    }
    if (std::isnan(rel) ? !std::isnan(worst) : rel > worst) worst = rel, worst_name = name;
  }
  std::printf("fassst_time: %s: %s vs %s over %zu blobs: worst relative difference %.3g (blob "
              "%s); %d over %.3g\n", FLAGS_model.c_str(), device.c_str(),
              reference_name.c_str(), first.size(), worst, worst_name.c_str(), over,
              FLAGS_check_tolerance);
  return over;
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_alsologtostderr = 1;
  gflags::SetUsageMessage(
      "times whole forward passes of a net, one synchronisation per pass\n"
      "usage: fassst_time -model NET.prototxt [-weights W] [-iterations N] [-warmup N] [-gpu ID]\n"
      "                   [-check_cpu | -check_against OTHER.prototxt] [-check_tolerance T]");
  caffe::GlobalInit(&argc, &argv);
  if (FLAGS_model.empty()) return Fail("-model: required (a prototxt)");
  if (!Readable(FLAGS_model)) return Fail(FLAGS_model + ": cannot read the -model file");
  if (!FLAGS_weights.empty() && !Readable(FLAGS_weights))
    return Fail(FLAGS_weights + ": cannot read the -weights file");
  if (FLAGS_iterations < 1) return Fail("-iterations: expected >= 1");
  if (FLAGS_warmup < 0) return Fail("-warmup: expected >= 0");
  if (!(FLAGS_check_tolerance >= 0)) return Fail("-check_tolerance: expected >= 0");
  if (FLAGS_check_cpu && !FLAGS_check_against.empty())
    return Fail("-check_cpu and -check_against: one or the other");
  if (!FLAGS_check_against.empty() && !Readable(FLAGS_check_against))
    return Fail(FLAGS_check_against + ": cannot read the -check_against file");
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

  // Caffe's own readers abort with a stack trace on a bad file: ask first, in one line.
  caffe::NetParameter model;
  if (!caffe::ReadProtoFromTextFile(FLAGS_model, &model))
    return Fail(FLAGS_model + ": not a net prototxt (NetParameter in text format)");
  caffe::NetParameter other;
  if (!FLAGS_check_against.empty() && !caffe::ReadProtoFromTextFile(FLAGS_check_against, &other))
    return Fail(FLAGS_check_against + ": not a net prototxt (NetParameter in text format)");
  caffe::NetParameter weights;
  if (!FLAGS_weights.empty() && !caffe::ReadProtoFromBinaryFile(FLAGS_weights, &weights))
    return Fail(FLAGS_weights + ": not a caffemodel (NetParameter in binary format)");
  caffe::Net<float> net(FLAGS_model, caffe::TEST);
  if (!net.input_blobs().empty())
    return Fail(FLAGS_model + ": the net has input blobs; time a net that makes its own input");
  if (!FLAGS_weights.empty()) {
    caffe::UpgradeNetAsNeeded(FLAGS_weights, &weights);
    const std::string misfit = Misfit(net, weights);
    if (!misfit.empty())
      return Fail(FLAGS_weights + ": does not fit " + FLAGS_model + ": " + misfit);
    net.CopyTrainedLayersFrom(weights);
  }
  caffe::shared_ptr<caffe::Net<float> > reference;  // -check_against's net
  std::string reference_name = "CPU";
  if (!FLAGS_check_against.empty()) {
    reference.reset(new caffe::Net<float>(FLAGS_check_against, caffe::TEST));
    reference_name = FLAGS_check_against + " on the CPU";
    if (!reference->input_blobs().empty())
      return Fail(FLAGS_check_against + ": the net has input blobs; compare a net that makes "
                  "its own input");
    for (const std::string& name : net.blob_names()) {
      if (!reference->has_blob(name))
        return Fail(FLAGS_check_against + ": has no blob " + name + " to compare with " +
                    FLAGS_model + "'s");
    }
    caffe::NetParameter trained;  // the same weights, fillers drawn once
    net.ToProto(&trained, false);
    const std::string misfit = Misfit(*reference, trained);
    if (!misfit.empty())
      return Fail(FLAGS_check_against + ": cannot take " + FLAGS_model + "'s weights: " + misfit);
    reference->CopyTrainedLayersFrom(trained);
  }

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
  if ((FLAGS_check_cpu || reference) &&
      CompareWithCpu(&net, reference ? reference.get() : &net, device, reference_name) > 0)
    return 1;
  return 0;
}
