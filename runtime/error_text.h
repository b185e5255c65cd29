// An exception's message without LibTorch's backtrace (c10::Error's what() appends one),
// for the one-line errors that wrap a LibTorch failure.
#pragma once
#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace dtokd {

inline std::string message_without_backtrace(const std::exception &e) {
    if (const auto *c = dynamic_cast<const c10::Error *>(&e)) return c->what_without_backtrace();
    return e.what();
}

}  // namespace dtokd
