#include "orchestrator/command.h"

namespace sdm::orchestrator {

std::unique_ptr<Command> make_doctor_command();
std::unique_ptr<Command> make_inspect_command();

std::vector<std::unique_ptr<Command>> make_commands() {
  std::vector<std::unique_ptr<Command>> commands;
  commands.push_back(make_doctor_command());
  commands.push_back(make_inspect_command());
  return commands;
}

}  // namespace sdm::orchestrator
