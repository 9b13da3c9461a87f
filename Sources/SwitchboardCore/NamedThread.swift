import Foundation

/// Runs `body` on a thread of its own, named `name` as `top -H` and `ps -L` show it.
///
/// The name is set from inside the thread: on Linux, a `Thread.name` set before `start()`
/// never reaches the system thread (it kept the name of the thread that started it, an event
/// loop's), and the system refuses names over 15 bytes.
public func startThread(named name: StaticString, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        Thread.current.name = name.description
        body()
    }
    thread.start()
}
