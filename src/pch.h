// Precompiled header: applied only to translation units that include LibTorch (see CMakeLists.txt).
#pragma once
#include <torch/torch.h>
