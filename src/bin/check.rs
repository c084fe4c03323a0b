//! `/opt/resource/check`: see [`image_resource::commands::check`].
fn main() -> std::process::ExitCode {
    image_resource::commands::main(image_resource::commands::Executable::Check)
}
