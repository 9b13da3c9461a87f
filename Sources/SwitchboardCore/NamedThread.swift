// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation

/// Runs `body` on a thread of its own, named `name` as `top -H` and `ps -L` show it.
///
/// The name is set from inside the thread, with the system's call: on Linux, a `Thread.name`
/// set before `start()` never reaches the system thread (it kept the name of the thread that
/// started it, an event loop's), and one set from inside through `Thread.current` reached it
/// only now and then (a thread started while other threads started kept the starter's name).
/// It is written to `/proc/thread-self/comm` (Swift does not see `pthread_setname_np`, a GNU
/// extension); the system refuses names over 15 bytes.
public func startThread(named name: StaticString, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        let file = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        if file >= 0 {
            name.withUTF8Buffer { _ = write(file, $0.baseAddress, $0.count) }
            close(file)
        }
        body()
    }
    thread.start()
}
