"""Generated Teacher__c records for the larger tests (deterministic)."""
import datetime as dt

SUBJECTS = ["Mathematics", "Science", "English", "Art", "Music"]
LANGUAGES = ["English", "Spanish", "French", "Mandarin", "Arabic"]


def teacher(i, prefix="G"):
    """One Teacher__c record with a value for most field types (some null)."""
    base = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    rec = {
        "Name": f"Teacher {prefix}{i}",
        "First_Name__c": f"First{i}",
        "Employee_Number__c": f"{prefix}-{i:07d}",
        "Email__c": f"t{i}.{prefix.lower()}@school.test",
        "Subject__c": SUBJECTS[i % len(SUBJECTS)],
        "Languages__c": ";".join(LANGUAGES[: 1 + i % 3]),
        "Active__c": i % 2 == 0,
        "Years__c": i % 40,
        "Rating__c": round((i % 1000) / 7.0, 6),
        "Salary__c": 30000 + (i % 5000) * 10.25,
        "Hire_Date__c": (dt.date(2000, 1, 1) + dt.timedelta(days=i % 9000)).isoformat(),
        "Last_Login__c": (base + dt.timedelta(seconds=i * 37, milliseconds=i % 1000))
        .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "Start_Time__c": f"{7 + i % 10:02d}:{i % 60:02d}:00.000Z",
    }
    if i % 5 == 0:
        rec["Notes__c"] = f"note {i}, with \"quotes\"\nand a second line"
    if i % 7 == 0:
        rec["Workload__c"] = float(i % 100)
    return rec


def teachers(n, start=0, prefix="G"):
    return [teacher(i, prefix) for i in range(start, start + n)]
