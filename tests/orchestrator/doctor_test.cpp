#include "orchestrator/doctor.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace sdm::orchestrator {
namespace {

/// A Unix socket at `path`, listening (a running munged) or bound and closed (munge installed, munged stopped).
void make_socket(const std::string& path, bool listening, int* keep_fd) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  if (listening) {
    ASSERT_EQ(::listen(fd, 1), 0);
    *keep_fd = fd;
  } else {
    ::close(fd);
  }
}

class LaunchSecurity : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sdm_doctor_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  int fd_ = -1;
};

TEST_F(LaunchSecurity, WarnsOnlyWhenAStaleMungeSocketWouldStallPmix) {
  const auto stale = (dir_ / "stale.socket").string();
  make_socket(stale, false, &fd_);
  const auto r = check_launch_security(stale);
  EXPECT_TRUE(r.pass);
  EXPECT_TRUE(r.figures["warning"].get<bool>()) << r.detail;
  EXPECT_NE(r.detail.find("PMIX_MCA_psec=^munge"), std::string::npos) << r.detail;

  const auto live = (dir_ / "live.socket").string();
  make_socket(live, true, &fd_);
  EXPECT_FALSE(check_launch_security(live).figures["warning"].get<bool>()) << "munged answering";
  EXPECT_FALSE(check_launch_security((dir_ / "absent").string()).figures["warning"].get<bool>()) << "no munge";
}

}  // namespace
}  // namespace sdm::orchestrator
