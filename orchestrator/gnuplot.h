#pragma once
// Running gnuplot (Debian: gnuplot-nox) on a figure's script. No shell is involved: the executable is found on
// PATH here and started with fork/exec in the figure's directory, so no path or label is ever parsed by a shell.
#include <string>

namespace sdm::orchestrator {

/// The gnuplot executable on PATH. None: an IoError that names gnuplot and the Debian package to install.
std::string find_gnuplot();

/// Runs `gnuplot -e "fmt='<format>'" <script>` with `dir` as working directory (the script names its data and
/// output files relative to it). A failure is an IoError carrying gnuplot's own message; on success, returns
/// what gnuplot wrote to stderr (its warnings, usually nothing).
std::string run_gnuplot(const std::string& gnuplot, const std::string& dir, const std::string& script,
                        const std::string& format);

}  // namespace sdm::orchestrator
