// libjpeg reports errors through a callback that must not return: this one formats the
// message and longjmps back to the setjmp of the caller, which turns it into an exception
// (no C++ object with a destructor may live between the two). For the decoder and encoder.
#pragma once
#include <csetjmp>
#include <cstdio>

#include <jpeglib.h>

namespace dtokd {

struct JpegError {
    jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

inline void jpeg_error_exit(j_common_ptr cinfo) {
    auto *err = reinterpret_cast<JpegError *>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

}  // namespace dtokd
