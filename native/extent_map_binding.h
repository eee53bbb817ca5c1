// The extent map, exposed to JS as the class ExtentMap.
#pragma once

#include <napi.h>

namespace kg {

void InitExtentMap(Napi::Env env, Napi::Object exports);

}  // namespace kg
