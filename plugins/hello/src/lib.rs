//! `hello`: the 12-line plugin of the Rust guide (`docs/writing-a-plugin-in-rust.md`).
/// The plugin's state: the topic of the last event it saw.
pub struct Hello(std::sync::Mutex<String>);
impl plugin_api::Plugin for Hello {
    const NAME: &'static str = "hello";
    fn init(host: &plugin_api::Host) -> plugin_api::Result<Self> {
        host.command("hello", |me: &Self, name: String, out| {
            Ok(writeln!(out, "Hello, {name}! Last seen: {}", me.0.lock()?)?)
        })?;
        host.on("*", |me: &Self, e| *me.0.lock().unwrap() = e.topic.into())?;
        Ok(Hello(Default::default()))
    }
}
plugin_api::export_plugin!(Hello);
