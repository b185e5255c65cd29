// The default job (the README's first command): train (or reuse) a Fashion-MNIST
// teacher, train (or reuse) the student alone with CE, distill the student with
// exact DTO-KD, and print a table of test accuracies. Finished stages in the
// root folder are reused, so a second run only prints the table.
#pragma once
#include <string>

namespace dtokd {

struct DefaultJobOptions {
    std::string root = "runs/default";
    std::string kernels = "halide";
    std::string device = "cpu";
    std::string teacher_model = "cnn_large", student_model = "cnn_small";
    int teacher_epochs = 4, student_epochs = 4;
};

// Returns the process exit code (0); errors are exceptions.
int run_default_job(const DefaultJobOptions &options);

}  // namespace dtokd
