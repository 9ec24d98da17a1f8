// detect MODEL IMAGE [CONF]: prints one line per detection of IMAGE:
//   class_id class_name score x1 y1 x2 y2   (pixels of IMAGE)
// MODEL is any file `yoloqat predict` reads (yoloqat checkpoint, .int8, YOLOv8 .pt or .onnx).
#include <yoloqat/detector.h>

#include <opencv2/imgcodecs.hpp>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s MODEL IMAGE [CONF]\n", argv[0]);
    return 2;
  }
  try {
    yoloqat::set_log_level("warn");
    yoloqat::DetectorOptions options;
    if (argc == 4) options.conf = std::strtof(argv[3], nullptr);
    yoloqat::Detector detector(argv[1], options);

    const cv::Mat image = cv::imread(argv[2], cv::IMREAD_COLOR);
    if (image.empty()) {
      std::fprintf(stderr, "error: cannot read the image %s\n", argv[2]);
      return 1;
    }
    for (const yoloqat::Detection& d : detector.detect(image))
      std::printf("%d %s %.5f %.3f %.3f %.3f %.3f\n", d.class_id, d.class_name.c_str(), d.score, d.x1, d.y1,
                  d.x2, d.y2);
  } catch (const yoloqat::UsageError& e) {  // a bad option or model file
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const yoloqat::Error& e) {  // anything else
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
