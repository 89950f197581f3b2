// The registry of `sdm` subcommands. Compiled into the executable (not the orchestrator library) so that
// leaf tools such as synth can contribute commands without a library depending on tools/.
#include "orchestrator/command.h"

namespace sdm::orchestrator {
std::unique_ptr<Command> make_datasets_command();
std::unique_ptr<Command> make_doctor_command();
std::unique_ptr<Command> make_inspect_command();
std::unique_ptr<Command> make_sweep_command();
std::unique_ptr<Command> make_submit_command();
std::unique_ptr<Command> make_status_command();
std::unique_ptr<Command> make_export_command();
std::unique_ptr<Command> make_compare_command();
std::unique_ptr<Command> make_plot_command();
std::unique_ptr<Command> make_report_command();
std::unique_ptr<Command> make_consolidate_command();
std::unique_ptr<Command> make_models_command();
std::unique_ptr<Command> make_embed_command();
std::unique_ptr<Command> make_predict_command();
std::unique_ptr<Command> make_stats_command();
std::unique_ptr<Command> make_verify_command();
}  // namespace sdm::orchestrator
namespace sdm::synth {
std::unique_ptr<orchestrator::Command> make_synth_command();
}

namespace sdm::orchestrator {

std::vector<std::unique_ptr<Command>> make_commands() {
  std::vector<std::unique_ptr<Command>> commands;
  commands.push_back(make_doctor_command());
  commands.push_back(make_datasets_command());
  commands.push_back(synth::make_synth_command());
  commands.push_back(make_inspect_command());
  commands.push_back(make_models_command());
  commands.push_back(make_embed_command());
  commands.push_back(make_sweep_command());
  commands.push_back(make_submit_command());
  commands.push_back(make_status_command());
  commands.push_back(make_export_command());
  commands.push_back(make_compare_command());
  commands.push_back(make_stats_command());
  commands.push_back(make_plot_command());
  commands.push_back(make_report_command());
  commands.push_back(make_consolidate_command());
  commands.push_back(make_verify_command());
  commands.push_back(make_predict_command());
  return commands;
}

}  // namespace sdm::orchestrator
