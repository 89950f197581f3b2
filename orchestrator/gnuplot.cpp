#include "orchestrator/gnuplot.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/error.h"

namespace sdm::orchestrator {
namespace fs = std::filesystem;

std::string find_gnuplot() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const auto colon = std::min(dirs.find(':', start), dirs.size());
    const std::string dir = dirs.substr(start, colon - start);
    start = colon + 1;
    if (dir.empty()) continue;
    std::string candidate = (fs::path(dir) / "gnuplot").string();
    if (::access(candidate.c_str(), X_OK) == 0 && fs::is_regular_file(candidate)) return candidate;
  }
  throw IoError(
      {"<env>", "PATH", ""},
      "gnuplot is not on PATH; sdm draws its figures with gnuplot (Debian/Ubuntu: apt-get install gnuplot-nox)");
}

std::string run_gnuplot(const std::string& gnuplot, const std::string& dir, const std::string& script,
                        const std::string& format) {
  int err[2];
  if (::pipe(err) != 0) throw IoError({gnuplot, "", ""}, std::string("pipe: ") + std::strerror(errno));
  const std::string fmt = "fmt='" + format + "'";  // format is one of the validated names (svg, pdf)
  std::vector<std::string> args{gnuplot, "-e", fmt, script};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw IoError({gnuplot, "", ""}, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // child: only async-signal-safe calls until exec
    ::dup2(err[1], 2);
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
    }
    ::close(err[0]);
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::execv(gnuplot.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(err[1]);
  std::string messages;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(err[0], buf, sizeof buf);
    if (n > 0) {
      messages.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(err[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string why = WIFEXITED(status) && WEXITSTATUS(status) == 126   ? "cannot enter " + dir
                            : WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "cannot execute " + gnuplot
                                                                              : messages;
    throw IoError({(fs::path(dir) / script).string(), "", ""}, "gnuplot failed (" + format + "): " + why);
  }
  return messages;
}

}  // namespace sdm::orchestrator
